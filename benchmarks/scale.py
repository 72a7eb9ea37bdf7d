"""How a pipeline's time and memory grow with the data: the shared scale harness (issue 12).

Every `benchmarks/scale_*.py` module is one pipeline. Its contract:

    NAME: str                       # short name, used by --only
    BASE: int                       # rows at factor 1
    FULL: int                       # the published full size of the real data set (rows)
    def run(n_rows: int, seed: int) -> dict   # the whole pipeline at that size; returns figures worth printing

The module's top-level imports should include the heavy libraries `run` uses (torch, sklearn, ...): the baseline
below imports the module and nothing else.

For each pipeline and each factor (rows = BASE x factor, capped at FULL; `--full` adds FULL itself), `run` executes
in a FRESH Python process, so the peak resident memory belongs to that size alone. Measured per size:

* time: wall seconds of `run(n)` inside the child (imports excluded), and the child's CPU seconds (user + system,
  from `os.wait4`, imports included);
* peak RSS: the child's VmHWM (`/proc/self/status`, read at the end of the child; `ru_maxrss` from `os.wait4`
  where /proc is missing);
* data RSS: peak RSS minus the peak RSS of an *empty* child that imports the same module and does nothing else.
  The interpreter, numpy, pandas, torch and sklearn cost several hundred MB whatever the data size; subtracting that
  constant is what makes the memory exponent measure how the *data-dependent* part grows (otherwise the constant
  would flatten the slope towards 0 at small sizes and the exponent would look better than it is).

The growth exponents are least-squares slopes of log(time) and log(data RSS) against log(rows) over the sizes that
finished: 1.0 is linear, 2.0 quadratic; the target is <= 1.1. Fixed costs (model set-up, a fixed-size subsample,
fixed-epoch training on small data) push the time exponent below 1 at small factors: read it over large factors.

    python benchmarks/scale.py                          # factors 1,4,16,64 for every pipeline
    python benchmarks/scale.py --only anomaly --factors 1,4,16 --full --max-seconds 1800
    python benchmarks/scale.py --json out.json          # also write every figure as JSON

The machine's load average is printed at the start and end and per size (column `load1`): on a shared machine wall
times are inflated; the CPU seconds are the steadier figure.
"""
from __future__ import annotations
import argparse, importlib.util, json, math, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover(only: str | None = None) -> dict:
    "name -> module path of every `scale_*.py` next to this file (imported only to read NAME/BASE/FULL, in the child)."
    found = {}
    for p in sorted(HERE.glob("scale_*.py")):
        name = p.stem.removeprefix("scale_")
        found[name] = p
    if only:
        names = [s.strip() for s in only.split(",")]
        missing = [n for n in names if n not in found]
        if missing: sys.exit(f"--only: no pipeline {missing}; found {sorted(found)}")
        found = {n: found[n] for n in names}
    return found


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"scale_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    for attr in ("NAME", "BASE", "FULL", "run"):
        if not hasattr(mod, attr): raise SystemExit(f"{path}: a scale module must define {attr} (see benchmarks/scale.py)")
    return mod


def _vmhwm_mb() -> float | None:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"): return int(line.split()[1]) / 1024
    except OSError: return None
    return None


def child(path: str, n: int, seed: int, out: str) -> None:
    "Runs in the fresh process: import the module, run it at `n` rows (n=0: nothing, the baseline), write JSON to `out`."
    mod = _load(Path(path))
    res, t = {}, 0.0
    if n > 0:
        t0 = time.perf_counter(); res = mod.run(n, seed) or {}; t = time.perf_counter() - t0
    info = dict(run_s=t, vmhwm_mb=_vmhwm_mb(), result=res, meta=dict(NAME=mod.NAME, BASE=mod.BASE, FULL=mod.FULL))
    tmp = out + ".tmp"
    with open(tmp, "w") as f: json.dump(info, f, default=str)
    os.replace(tmp, out)


def measure(path: Path, n: int, seed: int, max_seconds: float | None) -> dict:
    "Run one size in a fresh process; wall, CPU and peak RSS of that process."
    with tempfile.TemporaryDirectory() as td:
        out = os.path.join(td, "r.json")
        cmd = [sys.executable, __file__, "--child", str(path), str(n), str(seed), out]
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        timed_out, log = False, []
        import threading
        reader = threading.Thread(target=lambda: log.extend(proc.stdout), daemon=True); reader.start()
        deadline = None if not max_seconds else t0 + max_seconds
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid: break
            if deadline and time.perf_counter() > deadline:
                proc.kill(); timed_out = True
                pid, status, ru = os.wait4(proc.pid, 0); break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        reader.join(timeout=5)
        r = dict(rows=n, wall_s=wall, cpu_s=ru.ru_utime + ru.ru_stime, maxrss_mb=ru.ru_maxrss / 1024, load1=load,
                 rc=proc.returncode, timed_out=timed_out)
        if os.path.exists(out):
            info = json.load(open(out))
            r.update(run_s=info["run_s"], result=info["result"], meta=info["meta"])
            r["peak_mb"] = info["vmhwm_mb"] or r["maxrss_mb"]
        else:
            r.update(run_s=None, result={}, peak_mb=r["maxrss_mb"],
                     error="timed out" if timed_out else "".join(log)[-1500:])
        return r


def slope(xs, ys) -> float | None:
    "Least-squares slope of log(y) on log(x) (None with fewer than 2 usable points)."
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x and y and x > 0 and y > 0]
    if len(pts) < 2: return None
    mx = sum(p[0] for p in pts) / len(pts); my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return None if sxx == 0 else sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def _short(res: dict, width: int = 70) -> str:
    parts = []
    for k, v in res.items():
        if isinstance(v, float): v = f"{v:.4g}"
        elif isinstance(v, (dict, list)): continue
        parts.append(f"{k}={v}")
    s = " ".join(parts)
    return s if len(s) <= width else s[:width - 3] + "..."


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--factors", default="1,4,16,64", help="comma-separated multiples of each pipeline's BASE rows")
    ap.add_argument("--full", action="store_true", help="also run each pipeline at its FULL (published) size")
    ap.add_argument("--only", default=None, help="run only these pipelines (comma-separated NAMEs)")
    ap.add_argument("--max-seconds", type=float, default=None, help="kill a size that runs longer (larger sizes skipped)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write all figures to this JSON file")
    ap.add_argument("--child", nargs=4, metavar=("PATH", "N", "SEED", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child(a.child[0], int(a.child[1]), int(a.child[2]), a.child[3])
    factors = [float(f) for f in a.factors.split(",") if f.strip()]
    mods = discover(a.only)
    if not mods: sys.exit(f"no benchmarks/scale_*.py found in {HERE}")
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    allres = {}
    for name, path in mods.items():
        base = measure(path, 0, a.seed, a.max_seconds)
        if base.get("error"): print(f"[{name}] baseline failed:\n{base['error']}"); continue
        B, F = int(base["meta"]["BASE"]), int(base["meta"]["FULL"])
        sizes = [(f"{f:g}x", min(int(round(B * f)), F)) for f in factors]
        if a.full: sizes.append(("full", F))
        seen, todo = set(), []
        for lab, n in sizes:
            if n not in seen: seen.add(n); todo.append((lab, n))
        print(f"[{name}] BASE={B:,} FULL={F:,}; empty child (same imports): peak RSS {base['peak_mb']:.0f} MB; "
              f"sizes {[n for _, n in todo]}", flush=True)
        rows = []
        for lab, n in todo:
            r = measure(path, n, a.seed, a.max_seconds); r["label"] = lab
            r["data_mb"] = max(r["peak_mb"] - base["peak_mb"], 0.0)
            rows.append(r)
            st = "ok" if r["rc"] == 0 and not r.get("error") else ("TIMEOUT" if r["timed_out"] else f"FAILED rc={r['rc']}")
            print(f"  {lab:>5} {n:>10,} rows: {st}, run {r['run_s'] or r['wall_s']:.1f} s, cpu {r['cpu_s']:.1f} s, "
                  f"peak {r['peak_mb']:.0f} MB, load1 {r['load1']:.2f}", flush=True)
            if st != "ok":
                if r.get("error") and not r["timed_out"]: print("    " + r["error"].strip().replace("\n", "\n    ")[-1200:])
                break       # larger sizes would fail or time out too
        ok = [r for r in rows if r["rc"] == 0 and not r.get("error")]
        e_t = slope([r["rows"] for r in ok], [r["run_s"] for r in ok])
        e_c = slope([r["rows"] for r in ok], [r["cpu_s"] for r in ok])
        e_m = slope([r["rows"] for r in ok], [r["data_mb"] for r in ok])
        allres[name] = dict(base=base, full=F, rows=rows, exp_time=e_t, exp_cpu=e_c, exp_mem=e_m)
    # one table, all pipelines side by side
    print("\nload average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    hdr = f"{'pipeline':<10} {'size':>5} {'rows':>10} {'run s':>8} {'cpu s':>8} {'peak MB':>8} {'data MB':>8} {'load1':>6}  result"
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for name, d in allres.items():
        for r in d["rows"]:
            st = _short(r["result"]) if r["rc"] == 0 and not r.get("error") else ("TIMEOUT" if r["timed_out"] else "FAILED")
            rs = f"{r['run_s']:.1f}" if r.get("run_s") else "-"
            print(f"{name:<10} {r['label']:>5} {r['rows']:>10,} {rs:>8} {r['cpu_s']:>8.1f} {r['peak_mb']:>8.0f} "
                  f"{r['data_mb']:>8.0f} {r['load1']:>6.2f}  {st}")
    print("\ngrowth exponents (least-squares slope vs log rows; target <= 1.1; data MB = peak - empty child):")
    fmt = lambda e: "n/a" if e is None else f"{e:.2f}"
    for name, d in allres.items():
        n_ok = sum(r["rc"] == 0 and not r.get("error") for r in d["rows"])
        print(f"  {name:<10} time {fmt(d['exp_time'])}  cpu {fmt(d['exp_cpu'])}  memory {fmt(d['exp_mem'])}  "
              f"(over {n_ok} sizes; empty child {d['base']['peak_mb']:.0f} MB)")
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f: json.dump(allres, f, indent=1, default=str)
        os.replace(tmp, a.json)
        print(f"wrote {a.json}")
    return allres


if __name__ == "__main__":
    main()

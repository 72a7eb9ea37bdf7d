"""Figures for benchmarks/README.md, "Two hosts": the README's torchrun command on two hosts (network namespaces,
tests/netns.py) and on one, and a node killed mid-run. Needs root; prints one line and exits 0 where it cannot run.

    python .ci/multinode_bench.py            # about 3-5 minutes on 2 busy cores
"""
import json, os, sys, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO/"tests"))
from netns import TwoHosts, skip_reason, ADDRS   # noqa: E402

PY = sys.executable
ENV = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), "ACCELERATE_USE_CPU": "yes",
       "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "GLOO_SOCKET_IFNAME": None}
UP = "processes on CPU"      # the CLI's first line, printed once the process group has formed

def cli(nodes: int, rank: int, out: Path) -> list:
    args = ["--nnodes", nodes, "--node_rank", rank, "--master_addr", ADDRS[0]] if nodes > 1 else []
    return [PY, "-m", "torch.distributed.run", *args, "--master_port", 29500, "--nproc_per_node", 4 // nodes,
            "-m", "accel_course.cli", "run", "housing", "--fast", "--out", out]

def run(tmp: Path, nodes: int, kill_after: float | None = None) -> dict:
    with TwoHosts(tmp/f"logs{nodes}{'k' if kill_after else ''}") as h:
        t0 = time.monotonic()
        procs = [h.start(r, cli(nodes, r, tmp/f"out{nodes}{'k' if kill_after else ''}"),
                         env={**ENV, "GLOO_SOCKET_IFNAME": h.dev[r] if nodes > 1 else None}, name=f"n{r}")
                 for r in range(nodes)]
        t_up = None
        while time.monotonic() - t0 < 600 and procs[0].poll() is None:
            if t_up is None and UP in h.output(procs[0]): t_up = time.monotonic() - t0
            if t_up is not None and kill_after is not None and time.monotonic() - t0 > t_up + kill_after:
                h.kill_node(1)
                t_kill, kill_after = time.monotonic(), None
            time.sleep(0.1)
        t_end = time.monotonic()
        rcs = h.wait(procs, 30)
        res = dict(nodes=nodes, world_up_s=t_up, total_s=t_end - t0, exit_codes=rcs)
        if "t_kill" in locals():
            res["survivor_stopped_s"] = t_end - t_kill if rcs[0] is not None else None
            res["survivor_error"] = next((l for l in h.output(procs[0]).splitlines()
                                          if l.startswith("accel-course: error:")), None)
    res["orphans"] = len(h.orphans)
    m = tmp/f"out{nodes}"/"metrics.json"
    if kill_after is None and m.exists() and "survivor_error" not in res:
        res["metrics"] = json.loads(m.read_text())["models"]
    return res

if __name__ == "__main__":
    why = skip_reason()
    if why: print(f"skipped: {why}"); sys.exit(0)
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        two, one = run(tmp, 2), run(tmp, 1)
        killed = run(tmp, 2, kill_after=5)
    for r in (two, one, killed):
        print(json.dumps({k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items() if k != "metrics"}))
    print("metrics equal (2 nodes x 2 vs 1 node x 4):", two.get("metrics") == one.get("metrics"))

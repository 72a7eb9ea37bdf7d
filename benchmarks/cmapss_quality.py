"""C-MAPSS quality benchmark (not a test): the chapter's full protocol and five models on one subset, printed.

Protocol: RUL capped at 125, sensors with < 3 distinct values per condition dropped, per-condition standardisation
(all learned on the training engines), windows inside engines, 20% of the training engines for validation/early
stopping, test = last window of every test engine, RMSE and PHM08 score. Models: ridge and HGB on window
statistics; LSTM, GRU and 1-D CNN through the shared `fit`. Several seeds (training seed and validation split).

    python benchmarks/cmapss_quality.py --data FOLDER [--subset FD001] [--seeds 3] [--epochs 40] [--window 30]
    python benchmarks/cmapss_quality.py --data sample            # the generator at the subset's full size

FOLDER holds train_FD00x.txt, test_FD00x.txt and RUL_FD00x.txt as distributed by NASA (or the Kaggle copy
behrad3d/nasa-cmaps), or files named like train_FD001_units1-10.txt (the course's small sample).
Published FD001 test RMSE for comparison: MLP 37.6, CNN 18.5 (Babu 2016), LSTM 16.1 (Zheng 2017), deep CNN 12.6 (Li 2018).
"""
import argparse, os, time, warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
from accel_course import cmapss as C
from accel_course.training import torch_threads


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="sample", help="folder with the C-MAPSS text files, or 'sample' (generated)")
    ap.add_argument("--subset", default="FD001", choices=list(C.SUBSETS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--window", type=int, default=30)
    ap.add_argument("--patience", type=int, default=8)
    ap.add_argument("--models", default=",".join(C.MODELS))
    a = ap.parse_args()
    data = C.load_cmapss(a.data, a.subset, seed=0)
    print(f"{data}; test RUL {data.rul.min():.0f}..{data.rul.max():.0f}; window {a.window}; cap {C.RUL_CAP}", flush=True)
    rows = []
    for seed in range(a.seeds):
        P = C.prepare(data, window=a.window, seed=seed)
        Wte, yte = P.test.X, P.test.y
        if seed == 0:
            print(f"  conditions {P.pre.n_conditions}, kept {len(P.pre.features)} sensors, dropped {P.pre.dropped}; "
                  f"windows train {len(P.train)} valid {len(P.valid)} test {len(P.test)}", flush=True)
        wanted = a.models.split(",")
        if {"ridge", "hgb"} & set(wanted):
            t0 = time.perf_counter(); base = C.fit_baselines(P, seed)
            for name, m in base.items():
                if name in wanted:
                    rows.append(dict(model=name, seed=seed, **C.rul_metrics(yte, C.predict_baseline(m, Wte)),
                                     epochs=0, seconds=time.perf_counter() - t0))
                    print(f"  seed {seed} {name:5s} RMSE {rows[-1]['rmse']:6.2f}  PHM08 {rows[-1]['phm_score']:9.1f}", flush=True)
        for kind in ("lstm", "gru", "cnn"):
            if kind not in wanted: continue
            t0 = time.perf_counter()
            with torch_threads(1):      # tiny networks: one thread is fastest on a busy CPU
                m, h = C.train_rul_model(P, kind, epochs=a.epochs, seed=seed, patience=a.patience)
            rows.append(dict(model=kind, seed=seed, **C.rul_metrics(yte, C.predict_rul(m, Wte)), epochs=len(h),
                             seconds=time.perf_counter() - t0))
            print(f"  seed {seed} {kind:5s} RMSE {rows[-1]['rmse']:6.2f}  PHM08 {rows[-1]['phm_score']:9.1f}  "
                  f"({len(h)} epochs, best {h.best_epoch}, {rows[-1]['seconds']:.0f}s)", flush=True)
    df = pd.DataFrame(rows)
    print("\nmean (sd) over seeds, test = last window of each of the", data.n_test, "test engines:")
    g = df.groupby("model", sort=False)
    print(pd.DataFrame({"rmse": g["rmse"].mean(), "rmse_sd": g["rmse"].std(), "phm_score": g["phm_score"].mean(),
                        "mae": g["mae"].mean(), "epochs": g["epochs"].mean(), "seconds": g["seconds"].mean()}).round(2).to_string())


if __name__ == "__main__":
    main()

"""C-MAPSS engine-wise cross-validation (not a test): the literature's ingredients as rows, hgb on the same folds.

Evaluation = the test protocol on held-out training engines: the engines are split into k folds (by engine, seeded);
each fold's engines are cut short as the test engines were made (`truncate_engines`: keep round(life * U(0.4, 0.97))
cycles, at least 31; `--cuts` different cuts per engine, each scored as its own test engine), and a model trained on
the other folds' engines (20 % of those held out again for early stopping) predicts RUL from each cut engine's last
window. RMSE and PHM08 per fold (truth capped at the configuration's cap, as `accel-course run cmapss` scores it);
the table shows mean ± sd over the folds. With 5 folds x 20 engines x 5 cuts each fold scores 100 engines, so the
PHM08 sum is on the scale of the 100-engine FD001 test set.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/cmapss_cv.py \\
        --data ../shared/data/nasa_cmapss/train_FD001_all100.txt \\
        --configs hgb,base,w50 [--folds 5] [--cuts 5] [--csv out.csv]
    python benchmarks/cmapss_cv.py --data sample --subset FD002 --configs hgb,base,global_norm   # generated FD002-like
    python benchmarks/cmapss_cv.py --list                                                       # the configurations

Every network trains through the shared `fit` (`train_rul_model`).
"""
import argparse, csv, os, time, warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
from accel_course import cmapss as C
from accel_course.training import torch_threads

# base: what the chapter used before issue 24 (GRU, 32 units, window 30, cap 125, 14 sensors, constant lr)
BASE = dict(window=30, cap=125, min_distinct=3, pad_from=None, n_conditions=None,
            kind="gru", hidden=32, layers=1, bidirectional=False, pool=None, schedule=None, lr=3e-3, epochs=25,
            patience=5, dropout=0.1, seeds=1, stride=2, batch_size=256)   # stride 2: every 2nd training window
CONFIGS = {
    "hgb": dict(kind="hgb", stride=1),
    "ridge": dict(kind="ridge", stride=1),
    "base": {},
    "lstm": dict(kind="lstm"),
    "cnn": dict(kind="cnn"),
    "w50": dict(window=50),
    "w50_pad": dict(window=50, pad_from=31),
    "w80_pad": dict(window=80, pad_from=31),
    "cap130": dict(cap=130),
    "all_sensors": dict(min_distinct=0),
    "global_norm": dict(n_conditions=1),
    "h64": dict(hidden=64),
    "h64_l2": dict(hidden=64, layers=2),
    "onecycle": dict(schedule="onecycle", epochs=15, patience=None),
    "cosine": dict(schedule="cosine", epochs=15, patience=None),
    "bigru": dict(bidirectional=True),
    "attn": dict(pool="attn"),
    "transformer": dict(kind="transformer", hidden=32, layers=2, lr=1e-3),
    "tcn": dict(kind="tcn"),
    "ens3": dict(seeds=3),
    "bs64": dict(batch_size=64),
    "recipe": {k: v for k, v in C.RECIPE.items() if k in BASE},      # what `accel-course run cmapss` trains
}


def config(spec: str) -> dict:
    "A configuration: names joined by '+' combine their overrides (later ones win), e.g. 'w50_pad+onecycle'."
    c = dict(BASE)
    for name in spec.split("+"):
        if name not in CONFIGS: raise SystemExit(f"--configs: unknown configuration {name!r}; see --list")
        c.update(CONFIGS[name])
    return c


def run_fold(fold, c: dict, seed: int):
    "Predicted and true RUL of the fold's cut engines, and the seconds it took."
    t0 = time.perf_counter()
    P = C.prepare(fold, window=c["window"], cap=c["cap"], seed=seed, stride=c["stride"], n_conditions=c["n_conditions"],
                  min_distinct=c["min_distinct"], pad_from=c["pad_from"])
    Wte, yte = P.test.X, P.test.y
    if c["kind"] in ("hgb", "ridge"):
        pred = C.predict_baseline(C.fit_baselines(P, seed)[c["kind"]], Wte, P.cap)
        return pred, yte, time.perf_counter() - t0, 0
    preds, ep = [], []
    for s in range(c["seeds"]):
        with torch_threads(1):
            m, h = C.train_rul_model(P, c["kind"], c["hidden"], c["epochs"], c["batch_size"], c["lr"], seed + s,
                                     patience=c["patience"], layers=c["layers"], bidirectional=c["bidirectional"],
                                     pool=c["pool"], dropout=c["dropout"], schedule=c["schedule"])
        preds.append(C.predict_rul(m, Wte, P.cap)); ep.append(len(h))
    return np.mean(preds, 0), yte, time.perf_counter() - t0, float(np.mean(ep))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="sample", help="a train_ file or folder, or 'sample' (generated)")
    ap.add_argument("--subset", default="FD001", choices=list(C.SUBSETS))
    ap.add_argument("--n-train", type=int, default=None, help="generated training engines (with --data sample)")
    ap.add_argument("--configs", default="hgb,base")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--max-folds", type=int, default=None, help="run only the first N of the k folds (a quick screen)")
    ap.add_argument("--cuts", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="seeds the folds, the cuts and the training")
    ap.add_argument("--csv", default=None, help="append one row per (configuration, fold) to this CSV")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list:
        for k, v in CONFIGS.items(): print(f"{k:12s} {v}")
        return
    data = C.load_cmapss(a.data, a.subset, n_train=a.n_train, n_test=1, seed=0)
    folds = C.engine_folds(data, a.folds, a.seed, a.cuts)
    print(f"{data}\n{a.folds} folds (running {a.max_folds or a.folds}) x ~{data.n_train // a.folds} engines x "
          f"{a.cuts} cuts; threads "
          f"{os.environ.get('OMP_NUM_THREADS', 'default')}", flush=True)
    summary = []
    for spec in a.configs.split(","):
        c, rows = config(spec), []
        for i, fold in enumerate(folds[:a.max_folds]):
            pred, true, sec, ep = run_fold(fold, c, a.seed)
            m = C.rul_metrics(true, pred)
            rows.append(dict(config=spec, fold=i + 1, n=len(true), rmse=m["rmse"], phm=m["phm_score"], mae=m["mae"],
                             bias=float(np.mean(pred - true)), epochs=ep, seconds=sec))
            print(f"  {spec:18s} fold {i + 1}: RMSE {m['rmse']:6.2f}  PHM08 {m['phm_score']:8.1f}  "
                  f"({ep:.0f} ep, {sec:.0f}s)",
                  flush=True)
            if a.csv:
                new = not os.path.exists(a.csv)
                with open(a.csv, "a", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=list(rows[-1]) + ["data", "subset"])
                    if new: w.writeheader()
                    w.writerow(rows[-1] | {"data": a.data, "subset": a.subset})
        d = pd.DataFrame(rows)
        summary.append(dict(config=spec, rmse=f"{d.rmse.mean():.2f} ± {d.rmse.std():.2f}",
                            phm08=f"{d.phm.mean():.0f} ± {d.phm.std():.0f}", bias=round(d.bias.mean(), 2),
                            epochs=round(d.epochs.mean(), 1), s_per_fold=round(d.seconds.mean(), 1)))
        print(pd.DataFrame(summary).to_string(index=False), flush=True)


if __name__ == "__main__":
    main()

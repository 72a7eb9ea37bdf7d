"""Predictive-maintenance quality benchmark (not a test): prints the figures measured in one run.

1. AI4I 2020 machine-failure F1 on a stratified 20% hold-out of the real file, WITHOUT the failure-mode columns.
   The decision threshold is chosen on out-of-fold predictions of the training part (5-fold), never on the
   hold-out. Raw readings vs + physics features (delta_t, power, strain, strain_ratio) vs physics with delta_t in
   place of the absolute temperatures vs the chapter's MODEL_FEATURES (that + envelope_margin); several split
   seeds. `ceiling` is the F1 of the envelope alarm (margin < 0) on the same hold-out: the best that one
   process's readings allow, since tool-wear and random failures are not in them.
2. Azure PdM 24 h-ahead component-failure F1 and PR-AUC on the real sample with a time-ordered split
   (60/20/20 of the calendar, 24 h embargo, threshold from the validation period): RF on rolling features, LSTM, GRU.

    python benchmarks/maintenance_quality.py [--data ../shared/data] [--seeds 5] [--epochs 20] [--window 48]
"""
import argparse, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.metrics import f1_score, average_precision_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

from accel_course.core import best_f1_threshold
from accel_course import maintenance as M


def ai4i_benchmark(path: Path, seeds: int) -> pd.DataFrame:
    df = M.add_physics_features(M.load_ai4i(path).df)
    y = df["failure"].to_numpy()
    sets = {"raw": M.RAW_FEATURES, "physics": M.RAW_FEATURES + M.PHYSICS_FEATURES,
            "phys_dT": [f for f in M.MODEL_FEATURES if f not in M.ENVELOPE_FEATURES], "envelope": M.MODEL_FEATURES}
    models = {
        "hgb": lambda fs, s: M.tabular_pipeline(HistGradientBoostingClassifier(random_state=s), fs, scale=False),
        "hgb_bal": lambda fs, s: M.make_hgb(fs, seed=s),     # the chapter's: balanced class weights
        "rf": lambda fs, s: M.make_rf(fs, seed=s, n_estimators=300),
    }
    rows = []
    for fs_name, feats in sets.items():
        M.check_features(feats)                                  # no TWF..RNF, no Failure Type
        for m_name, make in models.items():
            for seed in range(seeds):
                t0 = time.perf_counter()
                tr, te = train_test_split(np.arange(len(df)), test_size=0.2, stratify=y, random_state=seed)
                X = df[feats]
                oof = cross_val_predict(make(feats, seed), X.iloc[tr], y[tr], method="predict_proba",
                                        cv=StratifiedKFold(5, shuffle=True, random_state=seed))[:, 1]
                thr = best_f1_threshold(y[tr], oof)
                model = make(feats, seed).fit(X.iloc[tr], y[tr])
                s = model.predict_proba(X.iloc[te])[:, 1]
                rows.append(dict(features=fs_name, model=m_name, seed=seed, f1=f1_score(y[te], s >= thr),
                                 ceiling=f1_score(y[te], df["envelope_margin"].to_numpy()[te] < 0),
                                 f1_at_0_5=f1_score(y[te], s >= 0.5), pr_auc=average_precision_score(y[te], s),
                                 threshold=thr, n_test=len(te), positives=int(y[te].sum()),
                                 seconds=time.perf_counter() - t0))
                print(f"  ai4i {fs_name:8s} {m_name:7s} seed {seed}: F1 {rows[-1]['f1']:.3f} "
                      f"(at 0.5: {rows[-1]['f1_at_0_5']:.3f}) PR-AUC {rows[-1]['pr_auc']:.3f}", flush=True)
    return pd.DataFrame(rows)


def azure_benchmark(folder: Path, epochs: int, seed: int = 0, window: int = 48) -> pd.DataFrame:
    d = M.load_azure_pdm(folder)
    A = M.azure_sequences(d, window=window, horizon=24)
    tab = M.azure_tabular(d)
    tr, va, te = M.azure_tabular_split(tab, A["cutoffs"])
    feats = [c for c in tab.columns if c not in ("datetime", "machineID", "fail_next")]
    res = {}
    t0 = time.perf_counter()
    rf = RandomForestClassifier(300, class_weight="balanced_subsample", min_samples_leaf=3, n_jobs=2,
                                random_state=seed).fit(tab.iloc[tr][feats], tab["fail_next"].iloc[tr])
    res["azure_rf"] = M.evaluate_scores(tab["fail_next"].iloc[va], rf.predict_proba(tab.iloc[va][feats])[:, 1],
                                        tab["fail_next"].iloc[te], rf.predict_proba(tab.iloc[te][feats])[:, 1])
    res["azure_rf"]["seconds"] = time.perf_counter() - t0
    for kind in ("lstm", "gru"):
        t0 = time.perf_counter()
        m, h = M.train_sequence_model(*A["train"][:2], *A["valid"][:2], kind=kind, epochs=epochs, seed=seed)
        res[f"azure_{kind}"] = M.evaluate_scores(A["valid"][1], M.sequence_scores(m, A["valid"][0]),
                                                 A["test"][1], M.sequence_scores(m, A["test"][0]))
        res[f"azure_{kind}"].update(seconds=time.perf_counter() - t0, best_epoch=h.best_epoch)
    out = pd.DataFrame(res).T
    c1, c2 = A["cutoffs"]
    print(f"  azure: train < {c1} - 24h, valid {c1} .. {c2} - 24h, test >= {c2}; test windows {len(A['test'][1])}, "
          f"positive {int(A['test'][1].sum())} (failures in the test period: "
          f"{int((d.failures['datetime'] >= c2).sum())})")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent/"shared"/"data"))
    ap.add_argument("--seeds", type=int, default=5, help="stratified split seeds for AI4I")
    ap.add_argument("--epochs", type=int, default=20, help="max epochs for the Azure LSTM/GRU (early stopping)")
    ap.add_argument("--window", type=int, default=48, help="hours of telemetry per Azure window")
    ap.add_argument("--skip-azure", action="store_true")
    a = ap.parse_args()
    data = Path(a.data)
    t0 = time.perf_counter()
    print("== AI4I 2020: machine failure, stratified 20% hold-out, no failure-mode features")
    r = ai4i_benchmark(data/"ai4i2020"/"ai4i2020.csv", a.seeds)
    summ = r.groupby(["features", "model"])[["f1", "f1_at_0_5", "pr_auc", "ceiling"]].agg(["mean", "min", "max"]).round(3)
    print(summ.to_string())
    s0 = r[r.seed == 0].set_index(["features", "model"])[["f1", "pr_auc"]].round(3)
    print("seed 0:\n" + s0.to_string())
    if not a.skip_azure:
        print("== Azure PdM: component failure within 24 h, time-ordered split (real 10-machine sample)")
        az = azure_benchmark(data/"azure_pdm", a.epochs, window=a.window)
        print(az[["accuracy", "precision", "recall", "f1", "pr_auc", "tp", "fp", "fn", "tn", "seconds"]].round(3).to_string())
    print(f"total {time.perf_counter() - t0:.0f} s")

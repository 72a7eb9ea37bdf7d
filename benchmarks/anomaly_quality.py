"""Anomaly-detection quality on UNSW-NB15 (chapter 32): AUC-ROC, PR-AUC, precision/recall/F1 on unseen flows.

Protocol: train the unsupervised detectors on the *normal* flows of one part of a partition file, choose the alarm
threshold on a validation part, and report on the remaining rows, never seen in training (stratified 60/20/20, repeated
over several split seeds). The supervised Random Forest sees the labels of the training part.

    python benchmarks/anomaly_quality.py                       # ../shared/data sample if present, else generated data
    python benchmarks/anomaly_quality.py --source /data/UNSW_NB15_training-set.csv --seeds 0 1 2
    python benchmarks/anomaly_quality.py --source sample        # generated traffic (chronological split)
    python benchmarks/anomaly_quality.py --ablation --seeds 0   # only the feature-group ablation (chapter, section 9)
"""
import argparse, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
from accel_course import anomaly as an
from accel_course.training import torch_threads

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent/"shared"/"data"/"unsw_nb15"/"UNSW_NB15_partition_sample.csv"
KEYS = ["auc_roc", "pr_auc", "precision", "recall", "f1"]


def one_split(data, seed, epochs, quick_epochs, mp):
    sp = an.make_splits(data, seed=seed)
    pre = an.FlowPreprocessor().fit(sp.train_normal)
    Xn, Xv, Xt = pre.transform(sp.train_normal), pre.transform(sp.val), pre.transform(sp.test)
    yv, yt, ct = sp.val["label"].to_numpy(), sp.test["label"].to_numpy(), sp.test["attack_cat"].to_numpy()
    res, t = [], {}
    t0 = time.perf_counter(); iso = an.fit_isolation_forest(Xn, 200, seed)
    res.append(an.evaluate_detector("isolation_forest", an.iforest_scores(iso, Xv), yv, an.iforest_scores(iso, Xt), yt, ct))
    t["isolation_forest"] = time.perf_counter() - t0
    bs = int(np.clip(len(Xn) // 100, 64, 1024))
    t0 = time.perf_counter()
    q, _ = an.train_autoencoder(Xn, Xv, yv, epochs=quick_epochs, batch_size=bs, lr=1e-3, mixed_precision=mp, seed=seed)
    res.append(an.evaluate_detector("ae_quick_mse", an.reconstruction_errors(q, Xv), yv, an.reconstruction_errors(q, Xt), yt, ct))
    t["ae_quick_mse"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ae, hist = an.train_autoencoder(Xn, Xv, yv, epochs=epochs, batch_size=bs, lr=3e-3, mixed_precision=mp, seed=seed)
    res.append(an.evaluate_detector("autoencoder_mse", an.reconstruction_errors(ae, Xv), yv, an.reconstruction_errors(ae, Xt), yt, ct))
    st = an.error_stats(ae, Xn)
    res.append(an.evaluate_detector("autoencoder", an.standardized_errors(ae, Xv, st), yv, an.standardized_errors(ae, Xt, st), yt, ct))
    t["autoencoder"] = time.perf_counter() - t0
    if data.has_time:
        t0 = time.perf_counter()
        lstm, _ = an.train_lstm_autoencoder(Xn, Xv, yv, window=16, epochs=8, mixed_precision=mp, seed=seed)
        res.append(an.evaluate_detector("lstm_autoencoder", an.lstm_flow_scores(lstm, Xv), yv, an.lstm_flow_scores(lstm, Xt), yt, ct))
        t["lstm_autoencoder"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rf = an.fit_random_forest(pre.transform(sp.train), sp.train["label"].to_numpy(), 200, seed)
    res.append(an.evaluate_detector("random_forest", rf.predict_proba(Xv)[:, 1], yv, rf.predict_proba(Xt)[:, 1], yt, ct))
    t["random_forest"] = time.perf_counter() - t0
    return sp, res, t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default=str(SAMPLE) if SAMPLE.exists() else "sample")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--quick-epochs", type=int, default=10)
    ap.add_argument("--mixed-precision", default="bf16")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--ablation", action="store_true", help="only the feature-group ablation, on the split of each seed")
    a = ap.parse_args()
    data = an.load_unsw(a.source, max_rows=a.rows)
    print(data)
    if a.ablation:
        for seed in a.seeds:
            sp = an.make_splits(data, seed=seed)
            print(f"\nFeature-group ablation, test AUC-ROC ({sp.how}, split seed {seed}, 100 trees)")
            print(an.feature_group_ablation(sp, seed=seed, n_estimators=100).to_string())
        return
    rows, per_cat = [], []
    for seed in a.seeds:
        with torch_threads(1):         # small networks: one thread is fastest on a busy CPU
            sp, res, t = one_split(data, seed, a.epochs, a.quick_epochs, a.mixed_precision)
        for e in res:
            rows.append(dict(seed=seed, model=e.name, **{k: e.metrics[k] for k in KEYS}, fit_s=t.get(e.name, np.nan)))
            per_cat.append(pd.Series(e.per_category, name=(seed, e.name)))
        print(f"seed {seed}: {sp.how}; train normals {len(sp.train_normal):,}, val {len(sp.val):,}, test {len(sp.test):,}: "
              + ", ".join(f"{e.name} AUC {e.metrics['auc_roc']:.3f}" for e in res), flush=True)
    df = pd.DataFrame(rows)
    print("\nTest metrics (threshold = best F1 on validation), mean +- std over seeds", a.seeds)
    agg = df.groupby("model", sort=False)[KEYS].agg(["mean", "std"])
    print(pd.DataFrame({k: agg[k]["mean"].map("{:.3f}".format) + " +- " + agg[k]["std"].map("{:.3f}".format) for k in KEYS}).to_string())
    pc = pd.DataFrame(per_cat).groupby(level=1, sort=False).mean().T
    print("\nDetection rate per category on test (Normal row = false-alarm rate), mean over seeds")
    print(pc.round(3).to_string())
    if data.has_time:
        print("\nRandom Forest: shuffled 5-fold CV vs chronological hold-out")
        print(an.cv_vs_holdout(data, an.make_splits(data), n_estimators=100))


if __name__ == "__main__":
    main()

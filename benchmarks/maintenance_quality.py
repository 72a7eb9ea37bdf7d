"""Predictive-maintenance quality benchmark (not a test): prints the figures measured in one run.

1. AI4I 2020 machine-failure F1 on a stratified 20% hold-out of the real file, WITHOUT the failure-mode columns.
   The decision threshold is chosen on out-of-fold predictions of the training part (5-fold), never on the
   hold-out. Raw readings vs + physics features (delta_t, power, strain, strain_ratio) vs physics with delta_t in
   place of the absolute temperatures vs the chapter's MODEL_FEATURES (that + envelope_margin); several split
   seeds. `ceiling` is the F1 of the envelope alarm (margin < 0) on the same hold-out: the best that one
   process's readings allow, since tool-wear and random failures are not in them.
2. Azure PdM 24 h-ahead component-failure F1 and PR-AUC on the real sample with a time-ordered split
   (60/20/20 of the calendar, 24 h embargo, threshold from the validation period): RF on rolling features, LSTM, GRU.
   The course's sample has 10 machines and only 3 component failures in its test period: far too few to rank
   models. `--azure-data FOLDER --machines 1-20` runs the same comparison on machines 1-20 of the full Kaggle copy.
3. `--generated`: the chapter's comparison at full size on its offline (generated) data -- what Run All shrinks to fit
   in about three minutes on 2 cores: Random Forests with 300 trees, LSTM/GRU up to 20 epochs, the Azure fleet
   (20 machines x 120 days) on 48 h windows with every training window.

    python benchmarks/maintenance_quality.py [--data ../shared/data] [--seeds 5] [--epochs 20] [--window 48]
    python benchmarks/maintenance_quality.py --skip-ai4i --azure-data path/to/azure_pdm --machines 1-20
    OMP_NUM_THREADS=1 python benchmarks/maintenance_quality.py --generated
    python benchmarks/maintenance_quality.py --contract 100     # cost of the data contracts (read + check)
"""
import argparse, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import f1_score, average_precision_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

from accel_course.core import best_f1_threshold
from accel_course.training import torch_threads
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


def machines_subset(d: M.AzurePdM, spec: str) -> M.AzurePdM:
    "Keep the machines named by `spec` ('1-20' or '1,5,7')."
    ids = set()
    for part in spec.split(","):
        a, _, b = part.partition("-")
        ids |= set(range(int(a), int(b or a) + 1))
    keep = {k: getattr(d, k)[getattr(d, k)["machineID"].isin(ids)].reset_index(drop=True)
            for k in ("telemetry", "errors", "maint", "failures", "machines")}
    if keep["telemetry"].empty: raise SystemExit(f"--machines {spec}: none of these machines is in {d.source}")
    return M.AzurePdM(**keep, source=f"{d.source} (machines {spec})")


def azure_benchmark(d: M.AzurePdM, epochs: int, seed: int = 0, window: int = 48, trees: int = 300) -> pd.DataFrame:
    A = M.azure_sequences(d, window=window, horizon=24)
    tab = M.azure_tabular(d)
    res = {}
    t0 = time.perf_counter()
    res["azure_rf"] = M.azure_forest(tab, A.cutoffs, trees, seed)[1]
    res["azure_rf"]["seconds"] = time.perf_counter() - t0
    for kind in ("lstm", "gru"):
        t0 = time.perf_counter()
        with torch_threads(1):          # small recurrent nets: one thread is fastest on a busy CPU
            m, h = M.train_sequence_model(A.train.X, A.train.y, A.valid.X, A.valid.y, kind=kind, epochs=epochs,
                                          seed=seed)
            res[f"azure_{kind}"] = M.evaluate_windows(m, A)
        res[f"azure_{kind}"].update(seconds=time.perf_counter() - t0, best_epoch=h.best_epoch)
    out = pd.DataFrame(res).T
    c1, c2 = A.cutoffs
    print(f"  azure: train < {c1} - 24h, valid {c1} .. {c2} - 24h, test >= {c2}; test windows {len(A.test)}, "
          f"positive {int(A.test.y.sum())} (failures in the test period: "
          f"{int((d.failures['datetime'] >= c2).sum())})")
    return out


def generated_benchmark(seed: int = 0, epochs: int = 20, window: int = 48, trees: int = 300) -> pd.DataFrame:
    "The chapter's comparison at full size on the generated data (same splits, features and thresholds as the chapter)."
    ai = M.add_physics_features(M.load_ai4i("sample", n=10_000, seed=seed).df)
    tr, va, te = M.ordered_split(len(ai))
    res = {}
    makers = {"rf": lambda f, seed: M.make_rf(f, seed, n_estimators=trees), "hgb": M.make_hgb, "svm": M.make_svm}
    for name, make in makers.items():
        t0 = time.perf_counter()
        res[f"ai4i_{name}"] = {**M.fit_tabular(make, M.MODEL_FEATURES, ai, tr, va, te, seed)[1],
                               "seconds": time.perf_counter() - t0}
    S = M.ai4i_sequences(ai, window=10, k=1)
    for kind in ("lstm", "gru"):
        t0 = time.perf_counter()
        with torch_threads(1):
            m, h = M.train_sequence_model(S.train.X, S.train.y, S.valid.X, S.valid.y, kind=kind, epochs=epochs,
                                          seed=seed)
            res[f"ai4i_{kind}"] = {**M.evaluate_windows(m, S),
                               "seconds": time.perf_counter() - t0, "best_epoch": h.best_epoch}
    az = M.load_azure_pdm("sample", n_machines=20, days=120, seed=seed)
    return pd.concat([pd.DataFrame(res).T, azure_benchmark(az, epochs, seed, window, trees)])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent/"shared"/"data"))
    ap.add_argument("--seeds", type=int, default=5, help="stratified split seeds for AI4I")
    ap.add_argument("--epochs", type=int, default=20, help="max epochs for the Azure LSTM/GRU (early stopping)")
    ap.add_argument("--window", type=int, default=48, help="hours of telemetry per Azure window")
    ap.add_argument("--skip-azure", action="store_true")
    ap.add_argument("--skip-ai4i", action="store_true")
    ap.add_argument("--azure-data", default=None, help="folder with the five PdM_*.csv files (default: DATA/azure_pdm)")
    ap.add_argument("--machines", default=None, help="Azure machines to keep, e.g. 1-20 (default: all in the folder)")
    ap.add_argument("--trees", type=int, default=300, help="Random Forest trees")
    ap.add_argument("--generated", action="store_true",
                    help="instead: the chapter's comparison at full size on its generated offline data")
    ap.add_argument("--contract", type=int, default=None, metavar="N_MACHINES",
                    help="instead: time reading + checking (the data contract) of the real AI4I file and of a generated "
                         "Azure fleet of N machines x 365 days (100: the full Kaggle copy's 876,000 telemetry rows)")
    a = ap.parse_args()
    data = Path(a.data)
    t0 = time.perf_counter()
    if a.contract:
        import tempfile
        if (data/"ai4i2020"/"ai4i2020.csv").exists():
            c = time.process_time(); M.read_ai4i_csv(data/"ai4i2020"/"ai4i2020.csv")
            print(f"AI4I real file, 10,000 rows: read + contract {time.process_time() - c:.2f} s CPU")
        with tempfile.TemporaryDirectory() as tmp:
            M.write_azure_pdm(M.make_azure_fleet(a.contract, 365, seed=0), tmp)
            c = time.process_time(); z = M.read_azure_pdm(tmp)
            print(f"Azure, {len(z.telemetry):,} telemetry rows: read + contract {time.process_time() - c:.2f} s CPU")
        raise SystemExit(0)
    cols = ["accuracy", "precision", "recall", "f1", "pr_auc", "tp", "fp", "fn", "tn", "seconds"]
    if a.generated:
        print(f"== the chapter's comparison at full size, generated data (trees {a.trees}, up to {a.epochs} epochs, "
              f"Azure windows {a.window} h, every training window)")
        print(generated_benchmark(epochs=a.epochs, window=a.window, trees=a.trees)[cols].round(3).to_string())
        print(f"total {time.perf_counter() - t0:.0f} s"); raise SystemExit(0)
    if not a.skip_ai4i:
        print("== AI4I 2020: machine failure, stratified 20% hold-out, no failure-mode features")
        r = ai4i_benchmark(data/"ai4i2020"/"ai4i2020.csv", a.seeds)
        summ = r.groupby(["features", "model"])[["f1", "f1_at_0_5", "pr_auc", "ceiling"]].agg(["mean", "min", "max"]).round(3)
        print(summ.to_string())
        s0 = r[r.seed == 0].set_index(["features", "model"])[["f1", "pr_auc"]].round(3)
        print("seed 0:\n" + s0.to_string())
    if not a.skip_azure:
        d = M.load_azure_pdm(Path(a.azure_data) if a.azure_data else data/"azure_pdm")
        if a.machines: d = machines_subset(d, a.machines)
        print(f"== Azure PdM: component failure within 24 h, time-ordered split ({d.source})")
        az = azure_benchmark(d, a.epochs, window=a.window, trees=a.trees)
        print(az[cols].round(3).to_string())
    print(f"total {time.perf_counter() - t0:.0f} s")

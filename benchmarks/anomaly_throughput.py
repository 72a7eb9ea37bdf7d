"""Anomaly-detection speed (chapter 30).

1. Scoring throughput of the fitted pipeline (preprocessing + autoencoder + threshold) on CPU, in flows/s
   (target >= 100,000 flows/s).
   `--old-vs-new` (issue 21): the scoring before and after the profiler's fix (batches sliced from the matrix instead
   of gathered by a DataLoader through `predict`), preprocessing and model timed apart, side by side in one run.
2. Autoencoder training throughput, fp32 vs bf16, through the shared Accelerate `fit` on whatever device is present
   (CUDA if available, else CPU), for the chapter's autoencoder and a wide one. Runs unchanged on a GPU.

    python benchmarks/anomaly_throughput.py [--flows 500000] [--train-rows 200000] [--epochs 3]
    python benchmarks/anomaly_throughput.py --old-vs-new [--flows 500000] [--score-threads 2]
"""
import argparse, json, os, platform, time, warnings

import numpy as np
import pandas as pd
import torch

warnings.filterwarnings("ignore")
from accel_course import anomaly as an
from accel_course.training import torch_threads


def fitted_pipeline(seed=0):
    d = an.generate_traffic(20_000, seed=seed); sp = an.make_splits(d)
    pre = an.FlowPreprocessor().fit(sp.train_normal); Xn = pre.transform(sp.train_normal)
    ae, _ = an.train_autoencoder(Xn, epochs=3, batch_size=256, mixed_precision="bf16", seed=seed)
    ae = ae.cpu()
    st = an.error_stats(ae, Xn)
    return an.AnomalyPipeline(pre, ae, 0.0, st), Xn


def bench_scoring(pipe, n_flows, threads, reps=3):
    base = an.generate_traffic(50_000, seed=99).df
    df = pd.concat([base] * int(np.ceil(n_flows / len(base))), ignore_index=True).iloc[:n_flows]
    pipe.score_flows(df.iloc[:10_000], num_threads=threads)           # warm-up
    best, t_pre = float("inf"), float("inf")
    for _ in range(reps):
        t0 = time.perf_counter(); out = pipe.score_flows(df, num_threads=threads); best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter(); pipe.pre.transform(df); t_pre = min(t_pre, time.perf_counter() - t0)
    assert len(out) == n_flows and np.isfinite(out["score"]).all()
    return n_flows / best, best, t_pre


def old_standardized_errors(model, X, stats, batch_size=8192):
    "The scoring before issue 21: batches gathered by a DataLoader (`array_loader`) through `training.predict`."
    from accel_course.training import predict, array_loader
    mu, inv = torch.tensor(stats["mean"]), 1.0 / torch.tensor(stats["std"])
    fwd = lambda m, b: (None, (((m(b[0]) - b[0]).pow_(2) - mu) * inv).mean(-1), None)
    return predict(model, array_loader(np.asarray(X, np.float32), batch_size=batch_size), forward_fn=fwd)[0]


def old_vs_new(pipe, n_flows, threads, reps=5):
    "Old and new scoring of the same flows, interleaved (so both see the same machine load); the best of `reps` each."
    base = an.generate_traffic(50_000, seed=99).df
    df = pd.concat([base] * int(np.ceil(n_flows / len(base))), ignore_index=True).iloc[:n_flows]
    t = {k: float("inf") for k in ("preprocess", "model_old", "model_new")}
    with torch_threads(threads):
        X = pipe.pre.transform(df)
        old_standardized_errors(pipe.model, X[:10_000], pipe.err_stats); an.standardized_errors(pipe.model, X[:10_000], pipe.err_stats)
        for _ in range(reps):
            t0 = time.perf_counter(); X = pipe.pre.transform(df); t["preprocess"] = min(t["preprocess"], time.perf_counter() - t0)
            t0 = time.perf_counter(); so = old_standardized_errors(pipe.model, X, pipe.err_stats); t["model_old"] = min(t["model_old"], time.perf_counter() - t0)
            t0 = time.perf_counter(); sn = an.standardized_errors(pipe.model, X, pipe.err_stats); t["model_new"] = min(t["model_new"], time.perf_counter() - t0)
    assert np.array_equal(so, sn), "old and new scores differ"
    old, new = t["preprocess"] + t["model_old"], t["preprocess"] + t["model_new"]
    print(f"scoring {n_flows:,} flows with {threads} torch thread(s), best of {reps} (scores bit-identical):")
    print(f"   preprocessing (FlowPreprocessor.transform): {t['preprocess']:.3f} s")
    print(f"   model, old (DataLoader + predict):          {t['model_old']:.3f} s")
    print(f"   model, new (slices of the matrix):          {t['model_new']:.3f} s   (x{t['model_old'] / t['model_new']:.2f})")
    print(f"   whole pipeline: old {n_flows / old:,.0f} flows/s, new {n_flows / new:,.0f} flows/s (x{old / new:.2f}); "
          f"preprocessing is {t['preprocess'] / new:.0%} of the new time")
    return dict(t, old_flows_per_s=n_flows / old, new_flows_per_s=n_flows / new)


def bench_training(X, hidden, bottleneck, batch_size, epochs, mp, device_is_cuda, threads):
    model = an.Autoencoder(X.shape[1], hidden=hidden, bottleneck=bottleneck)
    threads = None if device_is_cuda else threads
    with torch_threads(threads):
        _, hist = an.train_autoencoder(X, epochs=epochs, batch_size=batch_size, lr=1e-3, mixed_precision=mp, model=model, seed=0)
    times = [r["time_s"] for r in hist.rows][1:] or [hist.rows[0]["time_s"]]   # epoch 1 includes warm-up
    return len(X) / float(np.median(times)), hist.rows[-1]["train_loss"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", type=int, default=500_000)
    ap.add_argument("--train-rows", type=int, default=None, help="default: 1,000,000 on CUDA, 100,000 on CPU")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="CPU training threads (1: robust on a shared/busy CPU)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--old-vs-new", action="store_true", help="only the scoring before/after the profiler's fix")
    ap.add_argument("--score-threads", type=int, default=2, help="torch threads for --old-vs-new")
    a = ap.parse_args()
    if a.old_vs_new:
        res = old_vs_new(fitted_pipeline()[0], a.flows, a.score_threads)
        if a.json:
            with open(a.json, "w") as f: json.dump(res, f, indent=2)
        return
    cuda = torch.cuda.is_available()
    dev = torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"
    print(f"torch {torch.__version__}, device: {dev}, torch threads: {torch.get_num_threads()}")
    res = {"device": dev}
    pipe, Xn = fitted_pipeline()
    print(f"\n1) scoring throughput of the fitted pipeline on CPU ({a.flows:,} flows, {pipe.pre.n_features} features)")
    for threads in (1, torch.get_num_threads()):
        fps, t, t_pre = bench_scoring(pipe, a.flows, threads)
        print(f"   {threads} thread(s): {fps:,.0f} flows/s  ({t:.3f} s total, preprocessing {t_pre:.3f} s)")
        res[f"score_flows_per_s_{threads}thr"] = fps
    n = a.train_rows or (1_000_000 if cuda else 100_000)
    X = np.concatenate([Xn] * int(np.ceil(n / len(Xn))))[:n].astype(np.float32)
    print(f"\n2) autoencoder training throughput through fit ({'CUDA' if cuda else 'CPU'}; {n:,} rows, "
          f"{a.epochs} epochs, median of epochs 2..{'' if cuda else f', {a.threads} CPU thread(s)'})")
    configs = [("chapter AE (64-32-8)", (64, 32), 8, 1024), ("wide AE (2048-1024-64)", (2048, 1024), 64, 4096)]
    for name, hidden, bott, bs in configs:
        r = {}
        Xc = X if (cuda or bs < 4096) else X[:min(len(X), 12_288)]       # the wide model is slow on CPU: fewer rows
        for mp in ("no", "bf16"):
            r[mp], loss = bench_training(Xc, hidden, bott, bs, a.epochs, mp, cuda, a.threads)
            print(f"   {name:24s} batch {bs:5d} {mp:4s}: {r[mp]:12,.0f} samples/s (final train loss {loss:.4f})")
        print(f"   {name:24s} bf16 / fp32 speed-up: {r['bf16'] / r['no']:.2f}x")
        res[name] = dict(fp32=r["no"], bf16=r["bf16"], speedup=r["bf16"] / r["no"])
    if a.json:
        with open(a.json, "w") as f: json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()

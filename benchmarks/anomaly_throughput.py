"""Anomaly-detection speed (chapter 32).

1. Scoring throughput of the fitted pipeline (preprocessing + autoencoder + threshold) on CPU, in flows/s
   (target >= 100,000 flows/s).
   `--old-vs-new` (issue 21): the scoring before and after the hot-path work, interleaved in one run, best of N:
   preprocessing column by column (the old `FlowPreprocessor.transform`, kept below) vs in blocks of flows; the model
   through a DataLoader and `predict` (first version), on slices of the matrix (second), with the in-place error
   (now). Matrices and scores are asserted bit-identical.
2. Autoencoder training throughput, fp32 vs bf16, through the shared Accelerate `fit` on whatever device is present
   (CUDA if available, else CPU), for the chapter's autoencoder and a wide one. Runs unchanged on a GPU.

    python benchmarks/anomaly_throughput.py [--flows 500000] [--train-rows 200000] [--epochs 3]
    python benchmarks/anomaly_throughput.py --old-vs-new [--flows 500000] [--score-threads 1] [--reps 7]
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


def old_transform(p, df):
    "`FlowPreprocessor.transform` before the hot-path work (4488c9e): a row-major matrix filled column by column."
    from accel_course.anomaly_data import _signed_log1p
    k = len(p.numeric)
    out = np.zeros((len(df), p.n_features), np.float32)
    for j, c in enumerate(p.numeric): out[:, j] = pd.to_numeric(df[c]).to_numpy(np.float32)
    x = out[:, :k]; na = np.isnan(x)
    if na.any(): x[na] = np.broadcast_to(np.array([p.medians[c] for c in p.numeric], np.float32), x.shape)[na]
    li = [p.numeric.index(c) for c in p.log_cols]
    x[:, li] = _signed_log1p(x[:, li])
    x -= np.asarray(p.mean, np.float32); x /= np.asarray(p.std, np.float32)
    np.clip(x, -p.clip, p.clip, out=x)
    for c in p.categorical:
        col, levels = df[c], p.levels[c]
        look = pd.Index(levels).get_indexer(col.cat.categories.astype(str))
        cc = col.cat.codes.to_numpy(); codes = np.where(cc >= 0, look[cc], -1); codes[codes < 0] = len(levels)
        out[np.arange(len(df)), k + codes] = 1.0
        k += len(levels) + 1
    return out


def _mu_inv(stats):
    return torch.tensor(stats["mean"]), 1.0 / torch.tensor(stats["std"])


def old_standardized_errors(model, X, stats, batch_size=8192):
    "The model part of scoring, first version: batches gathered by a DataLoader (`array_loader`) through `training.predict`."
    from accel_course.training import predict, array_loader
    mu, inv = _mu_inv(stats)
    fwd = lambda m, b: (None, (((m(b[0]) - b[0]).pow_(2) - mu) * inv).mean(-1), None)
    return predict(model, array_loader(np.asarray(X, np.float32), batch_size=batch_size), forward_fn=fwd)[0]


def slices_standardized_errors(model, X, stats, batch_size=8192):
    "Second version: slices of the matrix (`_scores`), the error out of place."
    mu, inv = _mu_inv(stats)
    return an._scores(model, X, lambda m, x: (((m(x) - x).pow_(2) - mu) * inv).mean(-1), batch_size)


def old_vs_new(pipe, n_flows, threads, reps=7):
    "Old and new scoring of the same flows, interleaved (so both see the same machine load); the best of `reps` each."
    base = an.generate_traffic(50_000, seed=99).df
    df = pd.concat([base] * int(np.ceil(n_flows / len(base))), ignore_index=True).iloc[:n_flows]
    steps = {"pre_old": lambda: old_transform(pipe.pre, df), "pre_new": lambda: pipe.pre.transform(df),
             "model_dataloader": lambda: old_standardized_errors(pipe.model, X, pipe.err_stats),
             "model_slices": lambda: slices_standardized_errors(pipe.model, X, pipe.err_stats),
             "model_new": lambda: an.standardized_errors(pipe.model, X, pipe.err_stats),
             "score_flows": lambda: pipe.score_flows(df, num_threads=threads)}   # the real call, end to end
    t, out = {k: float("inf") for k in steps}, {}
    with torch_threads(threads):
        X = pipe.pre.transform(df)
        for f in steps.values(): f()                                   # warm-up
        for _ in range(reps):
            for k, f in steps.items():
                t0 = time.perf_counter(); out[k] = f(); t[k] = min(t[k], time.perf_counter() - t0)
    assert np.array_equal(out["pre_old"].view(np.uint32), out["pre_new"].view(np.uint32)), "old and new matrices differ"
    assert np.array_equal(out["score_flows"]["score"].to_numpy(), out["model_new"])
    assert np.array_equal(out["model_dataloader"], out["model_new"]) and np.array_equal(out["model_slices"], out["model_new"]), \
        "old and new scores differ"
    old, new = t["pre_old"] + t["model_slices"], t["pre_new"] + t["model_new"]
    first = t["pre_old"] + t["model_dataloader"]
    print(f"scoring {n_flows:,} flows with {threads} torch thread(s), best of {reps}, interleaved "
          f"(matrices and scores bit-identical):")
    print(f"   preprocessing, old (column by column):          {t['pre_old']:.3f} s")
    print(f"   preprocessing, new (blocks of flows):           {t['pre_new']:.3f} s   (x{t['pre_old'] / t['pre_new']:.2f})")
    print(f"   model, first (DataLoader + predict):            {t['model_dataloader']:.3f} s")
    print(f"   model, old (slices of the matrix):              {t['model_slices']:.3f} s")
    print(f"   model, new (slices, error in place):            {t['model_new']:.3f} s   (x{t['model_slices'] / t['model_new']:.2f})")
    print(f"   whole pipeline: first {n_flows / first:,.0f}, old {n_flows / old:,.0f}, new {n_flows / new:,.0f} flows/s "
          f"(new/old x{old / new:.2f}); preprocessing is {t['pre_new'] / new:.0%} of the new time")
    print(f"   end to end, AnomalyPipeline.score_flows (new): {t['score_flows']:.3f} s = {n_flows / t['score_flows']:,.0f} flows/s")
    return dict(t, first_flows_per_s=n_flows / first, old_flows_per_s=n_flows / old, new_flows_per_s=n_flows / new,
                score_flows_per_s=n_flows / t["score_flows"])


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
    ap.add_argument("--score-threads", type=int, default=1, help="torch threads for --old-vs-new")
    ap.add_argument("--reps", type=int, default=7, help="rounds for --old-vs-new (the best of them is reported)")
    a = ap.parse_args()
    if a.old_vs_new:
        res = old_vs_new(fitted_pipeline()[0], a.flows, a.score_threads, a.reps)
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

"""Distributed inference for the anomaly pipeline (chapter 32, issue 21): score flows with the saved pipeline in 1
process and in N processes (`split_between_processes` + `pad_across_processes`/`gather`), side by side in one run.

The pipeline is trained on generated traffic and saved, then reloaded by every worker (as a deployment would). The
flows are the full UNSW-NB15 size by default (2,540,044 generated flows: even shares; an odd `--flows` gives shares
that differ by one flow, padded with `pad_across_processes` for the gather and cut back).
Times are the scoring only (after a barrier, best of `--reps`), not the launch or the pipeline loading.

    python benchmarks/anomaly_distributed_inference.py [--flows 2540044] [--processes 2] [--reps 2]
"""
import argparse, os, tempfile, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flows", type=int, default=2_540_044)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    from accel_course import anomaly as an
    from accel_course.launch import launch
    from accel_course.training import torch_threads
    d = an.generate_traffic(20_000, seed=0); sp = an.make_splits(d)
    pre = an.FlowPreprocessor().fit(sp.train_normal); Xn = pre.transform(sp.train_normal)
    with torch_threads(1):
        ae, _ = an.train_autoencoder(Xn, epochs=2, batch_size=128, lr=3e-3, seed=0)
    tmp = Path(tempfile.mkdtemp(prefix="anomaly_dist_"))
    path = an.AnomalyPipeline(pre, ae, 0.0, an.error_stats(ae, Xn)).save(tmp/"pipeline")
    t0 = time.perf_counter()
    base = an.generate_traffic(min(a.flows, 500_000), seed=7).df
    df = pd.concat([base] * int(np.ceil(a.flows / len(base))), ignore_index=True).iloc[:a.flows]
    print(f"{len(df):,} flows ready in {time.perf_counter() - t0:.0f} s; {os.cpu_count()} CPUs", flush=True)
    rows, ref = {}, None
    pipe = an.AnomalyPipeline.load(path)
    for threads in (1, 2):
        best = float("inf")
        for _ in range(a.reps):
            t0 = time.perf_counter()
            s = an.score_split(pipe, df, num_threads=threads)
            best = min(best, time.perf_counter() - t0)
        ref = s if ref is None else ref
        assert np.array_equal(s, ref)
        rows[f"1 process x {threads} thread(s)"] = dict(seconds=best, flows_per_s=len(df) / best, identical=True)
    res = launch(an.score_worker, path, df, a.reps, num_processes=a.processes, use_cpu=True)
    share = -(-len(df) // a.processes)
    rows[f"{a.processes} processes x 1 thread"] = dict(seconds=res["seconds"], flows_per_s=len(df) / res["seconds"],
                                                       identical=bool(np.array_equal(res["scores"], ref)))
    print(f"shares: {share:,} flows on the first process(es), {len(df) - share * (a.processes - 1):,} on the last")
    print(pd.DataFrame(rows).T.to_string(float_format=lambda v: f"{v:,.2f}"))


if __name__ == "__main__": main()

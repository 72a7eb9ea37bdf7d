"""Compilation for the anomaly autoencoder (chapter 32, issue 21): eager vs `dynamo_backend` (torch.compile) for
training through `fit` and for scoring, side by side in one run, with a cold compile cache.

Prints the compile cost (first epoch / first call), the steady-state speed ratio, how far the outputs move, and what
a new input shape costs. A backend that is not installed fails at once with one line naming `dynamo_backend`.

    python benchmarks/anomaly_compile.py [--backend inductor] [--epochs 3] [--score-flows 200000] [--threads 1]
"""
import argparse, os, shutil, tempfile, time, warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="inductor", help="the dynamo_backend to compare with eager")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--flows", type=int, default=30_000, help="generated flows (the chapter's 30,000 by default)")
    ap.add_argument("--score-flows", type=int, default=200_000)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    cache = tempfile.mkdtemp(prefix="inductor_cache_")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache            # a cold cache: the compile time a new learner pays
    import torch
    from accel_course import anomaly as an
    from accel_course.training import torch_threads
    from accel_course.training import check_dynamo_backend
    check_dynamo_backend(a.backend)
    try:
        d = an.generate_traffic(a.flows, seed=0); sp = an.make_splits(d)
        pre = an.FlowPreprocessor().fit(sp.train_normal); Xn = pre.transform(sp.train_normal)
        rows, models = {}, {}
        with torch_threads(a.threads):
            for backend in (None, a.backend):
                t0 = time.perf_counter()
                m, h = an.train_autoencoder(Xn, epochs=a.epochs, batch_size=128, lr=3e-3, seed=0,
                                            dynamo_backend=backend)
                ep = [r["time_s"] for r in h.rows]
                rows[f"train {backend or 'eager'}"] = dict(total_s=time.perf_counter() - t0, first_epoch_s=ep[0],
                                                          steady_epoch_s=float(np.median(ep[1:] or ep)),
                                                          final_train_loss=h.rows[-1]["train_loss"])
                models[backend or "eager"] = m
            st = an.error_stats(models["eager"], Xn)
            base = an.generate_traffic(50_000, seed=99).df
            df = pd.concat([base] * int(np.ceil(a.score_flows / len(base))), ignore_index=True).iloc[:a.score_flows]
            X = pre.transform(df)
            ae = models["eager"]
            an.standardized_errors(ae, X[:10_000], st)
            t0 = time.perf_counter(); se = an.standardized_errors(ae, X, st); te = time.perf_counter() - t0
            torch._dynamo.reset()
            sc = torch.compile(ae, backend=a.backend)
            t0 = time.perf_counter(); an.standardized_errors(sc, X, st); tfirst = time.perf_counter() - t0
            t0 = time.perf_counter(); scs = an.standardized_errors(sc, X, st); tc = time.perf_counter() - t0
            t0 = time.perf_counter(); an.standardized_errors(sc, X[:1000], st); tshape = time.perf_counter() - t0
        print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {a.threads} thread(s), backend {a.backend!r}, "
              "cold cache\n")
        print(pd.DataFrame(rows).T.round(4).to_string())
        e, c = rows["train eager"], rows[f"train {a.backend}"]
        gain, cost = e["steady_epoch_s"] - c["steady_epoch_s"], c["first_epoch_s"] - c["steady_epoch_s"]
        print(f"\ntraining: steady epoch eager / compiled = x{e['steady_epoch_s'] / c['steady_epoch_s']:.2f}; "
              f"compile cost "
              f"{cost:.1f} s (first epoch minus a steady one); break-even after "
              + (f"{cost / gain:.0f} epochs" if gain > 0 else "never (the compiled epoch is not faster)")
              + f"; |final loss difference| {abs(e['final_train_loss'] - c['final_train_loss']):.1e}")
        print(f"scoring {len(X):,} flows: eager {len(X) / te:,.0f} flows/s, compiled {len(X) / tc:,.0f} flows/s "
              f"(x{te / tc:.2f}); first compiled call {tfirst:.1f} s; a new batch size {tshape:.2f} s; "
              f"max |score difference| {np.abs(scs - se).max():.1e}")
    finally:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__": main()

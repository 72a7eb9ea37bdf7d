"""Compilation for the served sentiment model (chapter 25, issue 21): the model's forward pass eager vs
`torch.compile` (the backend `Accelerator(dynamo_backend=...)` would use), side by side in one run, cold compile cache.

For each batch shape (texts x tokens) it prints the eager and compiled time per batch, interleaved so that a busy
machine slows both alike, and the speed ratio; then the first compiled call (the compilation), the cost of the first
new sequence length (a recompilation that marks the length dynamic) and of the next one, and the largest logit
difference. A backend that is not installed fails at once with one line naming `dynamo_backend`.

    python benchmarks/serve_compile.py [--model DIR] [--backend inductor] [--threads 2] [--repeats 20]
"""
import argparse, os, tempfile, time, warnings

warnings.filterwarnings("ignore")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="a saved model folder (default: the offline MiniLM, fresh head)")
    ap.add_argument("--backend", default="inductor", help="the dynamo_backend to compare with eager")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the server's forward runs with these)")
    ap.add_argument("--repeats", type=int, default=20, help="timed batches per shape and mode")
    ap.add_argument("--shapes", default="1x32,8x64,32x128", help="TEXTSxTOKENS batch shapes to time")
    a = ap.parse_args()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor_cache_")   # a cold cache
    import torch
    from accel_course.training import check_dynamo_backend
    from accel_course.sentiment_model import load_classifier, LABELS3
    check_dynamo_backend(a.backend)
    torch.set_num_threads(a.threads)
    model, tok = load_classifier(a.model, labels=None if a.model else LABELS3)
    model.eval()
    text = "the battery lasts two days, the screen is bright and the case feels cheap"

    def batch(n, t): return tok([text] * n, padding="max_length", truncation=True, max_length=t, return_tensors="pt")

    def run(m, b):
        with torch.inference_mode(): return m(**b).logits

    shapes = [tuple(map(int, s.split("x"))) for s in a.shapes.split(",")]
    compiled = torch.compile(model, backend=a.backend, dynamic=False)
    t0 = time.perf_counter(); run(compiled, batch(*shapes[0])); first = time.perf_counter() - t0
    print(f"backend {a.backend}, {a.threads} thread(s); first compiled call (compilation) {first:.1f} s")
    print(f"{'batch':>10} {'eager ms':>9} {'compiled ms':>12} {'ratio':>6} {'compile s':>10} {'max |diff|':>10}")
    for n, t in shapes:
        b = batch(n, t)
        t0 = time.perf_counter(); out_c = run(compiled, b); comp = time.perf_counter() - t0   # this shape's compile
        diff = (out_c - run(model, b)).abs().max().item()
        times = {"eager": [], "compiled": []}
        for _ in range(a.repeats):                 # interleaved: load on the machine hits both alike
            for name, m in (("eager", model), ("compiled", compiled)):
                t0 = time.perf_counter(); run(m, b); times[name].append(time.perf_counter() - t0)
        e, c = (1000 * sorted(v)[len(v) // 2] for v in times.values())   # medians
        print(f"{n:>4}x{t:<5} {e:9.1f} {c:12.1f} {e / c:6.2f} {comp:10.1f} {diff:10.1e}")
    torch._dynamo.reset()                           # forget the static graphs above: start the default case cold
    dyn = torch.compile(model, backend=a.backend)   # default: a new length recompiles once, then runs dynamic
    n = shapes[0][0]
    cost = []
    for t in (40, 48, 56):
        t0 = time.perf_counter(); run(dyn, batch(n, t)); cost.append(time.perf_counter() - t0)
    print(f"default (automatic dynamic) compile, lengths 40/48/56 tokens: first calls {cost[0]:.1f} s / "
          f"{cost[1]:.1f} s / {cost[2]:.2f} s (the second length recompiles with a dynamic length; the third reuses it)")


if __name__ == "__main__":
    main()

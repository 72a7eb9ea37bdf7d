"""Training throughput of `fit` in fp32, bf16 and fp16, side by side in one run, on whatever device is here.

    python benchmarks/precision_speed.py [--hidden 2048] [--depth 4] [--n 16384] [--bs 512] [--reps 3]

On a GPU the three precisions are measured; on a CPU fp16 is skipped (Accelerate leaves autocast off on CPU, so it
would just be fp32 again). Prints samples/s (median of `reps` alternating runs) and the speedup over fp32. Mixed
precision pays off when matmuls dominate: a wide MLP is the simplest such model.
"""
import argparse, statistics, time
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from accel_course.training import fit, make_mlp

def run(mp, X, y, hidden, depth, bs, epochs=1):
    torch.manual_seed(0)
    model = make_mlp(X.shape[1], hidden, 1, depth)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dl = DataLoader(TensorDataset(X, y), batch_size=bs, shuffle=True, drop_last=True)
    if torch.cuda.is_available(): torch.cuda.synchronize()
    t0 = time.perf_counter()
    h = fit(model, opt, dl, loss_fn=nn.MSELoss(), epochs=epochs, mixed_precision=mp, verbose=False)
    if torch.cuda.is_available(): torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return len(dl) * bs * epochs / dt, h.final["train_loss"]

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=2048); ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--n", type=int, default=16384); ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--bs", type=int, default=512); ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    gpu = torch.cuda.is_available()
    dev = torch.cuda.get_device_name(0) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    g = torch.Generator().manual_seed(0)
    X = torch.randn(a.n, a.d, generator=g); y = X[:, :8].sum(1, keepdim=True).sin()
    precisions = ["no", "bf16", "fp16"] if gpu else ["no", "bf16"]
    print(f"device: {dev}; torch {torch.__version__}; MLP {a.depth}x{a.hidden}, batch {a.bs}, {a.n} samples/epoch")
    run("no", X[:a.bs * 2], y[:a.bs * 2], a.hidden, a.depth, a.bs)   # warm-up
    res = {p: [] for p in precisions}
    for r in range(a.reps):
        for p in (precisions if r % 2 == 0 else precisions[::-1]): res[p].append(run(p, X, y, a.hidden, a.depth, a.bs)[0])
    base = statistics.median(res["no"])
    for p in precisions:
        m = statistics.median(res[p])
        print(f"  {('fp32' if p == 'no' else p):5}: {m:10.0f} samples/s  x{m / base:.2f} vs fp32  (runs: {', '.join(f'{v:.0f}' for v in res[p])})")
    if not gpu: print("  fp16: skipped on CPU (autocast is off there: it would be fp32)")

"""Time `fit` against a plain PyTorch loop on the same model, data and threads, alternating the two in one run.

    python benchmarks/fit_overhead.py [--reps 15] [--n 8000] [--epochs 1]

Both loops do the same work: AdamW training epochs and a validation pass per epoch. `fit` additionally runs through
Accelerate (prepared model/optimizer/dataloaders, `accumulate`, `backward`), checks every loss for NaN/inf,
accumulates the epoch loss, gathers validation predictions for the metrics and keeps the best weights.

Machines are noisy (other processes steal cores), so each configuration alternates plain/fit runs and reports the
MIN (least disturbed run) and the median of wall time and of process CPU time, plus the per-step overhead. The
overhead is a roughly constant cost per optimizer step, so its share shrinks as the model grows: two model sizes
are measured. Target: ratio <= 1.03 on CPU.
"""
import argparse, statistics, time, platform
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from accel_course.training import fit, toy_regression, make_mlp

def data(n, d):
    X, y = toy_regression(n, d=d, seed=0)
    n_tr = int(0.9 * n)
    return TensorDataset(X[:n_tr], y[:n_tr]), TensorDataset(X[n_tr:], y[n_tr:])

def plain(train_ds, valid_ds, hidden, epochs, bs, seed=0):
    torch.manual_seed(seed)
    model = make_mlp(train_ds.tensors[0].shape[1], hidden); opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tdl = DataLoader(train_ds, batch_size=bs, shuffle=True); vdl = DataLoader(valid_ds, batch_size=1024)
    loss_fn = nn.MSELoss()
    for _ in range(epochs):
        model.train()
        for xb, yb in tdl:
            loss = loss_fn(model(xb), yb); loss.backward(); opt.step(); opt.zero_grad()
        model.eval()
        with torch.no_grad(): val = sum(loss_fn(model(xb), yb).item() * len(xb) for xb, yb in vdl) / len(valid_ds)
    return val

def with_fit(train_ds, valid_ds, hidden, epochs, bs, seed=0):
    torch.manual_seed(seed)
    model = make_mlp(train_ds.tensors[0].shape[1], hidden); opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tdl = DataLoader(train_ds, batch_size=bs, shuffle=True); vdl = DataLoader(valid_ds, batch_size=1024)
    h = fit(model, opt, tdl, vdl, loss_fn=nn.MSELoss(), epochs=epochs, seed=seed, verbose=False, mixed_precision="no")
    return h.final["val_loss"]

def measure(tr, va, hidden, epochs, bs, reps):
    plain(tr, va, hidden, 1, bs); with_fit(tr, va, hidden, 1, bs)    # warm up both
    res = {"plain": ([], []), "fit": ([], [])}
    for r in range(reps):
        order = [("plain", plain), ("fit", with_fit)] if r % 2 == 0 else [("fit", with_fit), ("plain", plain)]
        for name, fn in order:
            w0, c0 = time.perf_counter(), time.process_time()
            fn(tr, va, hidden, epochs, bs)
            res[name][0].append(time.perf_counter() - w0); res[name][1].append(time.process_time() - c0)
    return res

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=15); ap.add_argument("--n", type=int, default=8000)
    ap.add_argument("--d", type=int, default=32); ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--bs", type=int, default=128); ap.add_argument("--sizes", default="256,1024")
    a = ap.parse_args()
    tr, va = data(a.n, a.d)
    steps = a.epochs * ((len(tr) + a.bs - 1) // a.bs)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}; n={a.n} d={a.d} "
          f"batch={a.bs} epochs={a.epochs} ({steps} optimizer steps per run), {a.reps} alternating reps per size")
    for hidden in map(int, a.sizes.split(",")):
        r = measure(tr, va, hidden, a.epochs, a.bs, a.reps)
        (pw, pc), (fw, fc) = r["plain"], r["fit"]
        print(f"\nMLP hidden={hidden} ({sum(p.numel() for p in make_mlp(a.d, hidden).parameters()):,} params)")
        for label, P, F in (("wall", pw, fw), ("cpu ", pc, fc)):
            print(f"  {label}: plain min {min(P):.3f}s median {statistics.median(P):.3f}s | fit min {min(F):.3f}s "
                  f"median {statistics.median(F):.3f}s | ratio fit/plain min {min(F)/min(P):.3f}, median {statistics.median(F)/statistics.median(P):.3f}")
        print(f"  per-step overhead (min wall): {(min(fw) - min(pw)) / steps * 1e6:.0f} us; target ratio <= 1.03")

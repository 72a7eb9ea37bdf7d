"""Time `fit` against a plain PyTorch loop on the same model, data and threads, alternating the two in one run.

    python benchmarks/fit_overhead.py [--reps 5] [--n 20000] [--hidden 256] [--epochs 2]

Prints the median time of each and the ratio fit/plain (target <= 1.03 on CPU). Both loops do the same work:
train epochs with AdamW and a validation pass per epoch. `fit` additionally checks the loss for NaN each step,
accumulates the epoch loss, computes the validation metrics from gathered predictions and keeps the best weights.
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
    h = fit(model, opt, tdl, vdl, loss_fn=nn.MSELoss(), epochs=epochs, seed=seed, progress=False, verbose=False, mixed_precision="no")
    return h.final["val_loss"]

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5); ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--d", type=int, default=32); ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=2); ap.add_argument("--bs", type=int, default=128)
    a = ap.parse_args()
    tr, va = data(a.n, a.d)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}; "
          f"n={a.n} d={a.d} hidden={a.hidden} epochs={a.epochs} batch={a.bs} reps={a.reps}")
    plain(tr, va, a.hidden, 1, a.bs); with_fit(tr, va, a.hidden, 1, a.bs)   # warm-up both
    tp, tf = [], []
    for r in range(a.reps):
        for name, fn, ts in ([("plain", plain, tp), ("fit", with_fit, tf)] if r % 2 == 0 else [("fit", with_fit, tf), ("plain", plain, tp)]):
            t0 = time.perf_counter(); fn(tr, va, a.hidden, a.epochs, a.bs); ts.append(time.perf_counter() - t0)
    mp, mf = statistics.median(tp), statistics.median(tf)
    print(f"plain loop: median {mp:.3f}s  (all: {', '.join(f'{t:.3f}' for t in tp)})")
    print(f"fit:        median {mf:.3f}s  (all: {', '.join(f'{t:.3f}' for t in tf)})")
    print(f"ratio fit/plain = {mf/mp:.3f}  (target <= 1.03)")

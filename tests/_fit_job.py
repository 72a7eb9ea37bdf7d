"""A small fit() job run as a subprocess by test_fit.py (so it can be killed with SIGKILL)."""
import sys, json, time
from pathlib import Path
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from accel_course.training import fit, toy_regression, make_mlp, make_accelerator, Checkpoints, RestoreBest, LRScheduler

def main(out, epochs, resume, slow, every_n_steps):
    X, y = toy_regression(1024, seed=1)
    tdl = DataLoader(TensorDataset(X[:800], y[:800]), batch_size=32, shuffle=True)
    vdl = DataLoader(TensorDataset(X[800:], y[800:]), batch_size=64)
    torch.manual_seed(0)
    model = make_mlp(dropout=0.1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=50, gamma=0.7)
    def mae(p, t): return float(abs(p - t).mean())
    class Slow:   # give the test time to kill us at any point of an epoch
        def after_batch(self, state):
            if slow: time.sleep(slow / len(state.train_dl))
    ckpt = Checkpoints(out, every_n_steps=every_n_steps or None, resume_from=out if resume else None)
    hist = fit(model, opt, tdl, vdl, loss_fn=nn.MSELoss(), metrics={"mae": mae}, epochs=epochs,
               callbacks=[Slow(), ckpt, RestoreBest(enabled=False), LRScheduler(sched)], seed=7, verbose=True,
               accelerator=make_accelerator(cpu=True))   # CPU: the test compares the numbers bit for bit
    w = float(sum(p.detach().double().abs().sum() for p in model.parameters()))
    wb = [p.detach().flatten().tolist() for p in model.parameters()]
    Path(out, "result.json").write_text(json.dumps({"rows": hist.rows, "weights": w, "params": wb}))

if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "resume", float(sys.argv[4]),
         int(sys.argv[5]) if len(sys.argv) > 5 else 0)

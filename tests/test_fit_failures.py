"""How `fit` fails safely: a NaN in the validation data stops training (naming epoch and metric), resume falls back
to the newest complete checkpoint, and what `fit` writes gets the umask's permissions."""
import json, os, re, shutil, stat, subprocess, sys
from pathlib import Path
import pytest, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from accel_course.training import (fit, toy_regression, make_mlp, make_accelerator, NonFiniteLossError, Checkpoints,
                                   EarlyStopping, ProgressBar, RestoreBest)

def _dls(nan_in_valid=False):
    X, y = toy_regression(192, seed=0)
    Xv = X[128:].clone()
    if nan_in_valid: Xv[5, 2] = float("nan")
    return (DataLoader(TensorDataset(X[:128], y[:128]), batch_size=32),
            DataLoader(TensorDataset(Xv, y[128:]), batch_size=32))


# 1. a NaN in the validation data must stop training, not make epoch 1 "best" and roll the weights back
def test_nan_in_validation_data_raises_naming_epoch_and_metric(tmp_path):
    tdl, vdl = _dls(nan_in_valid=True)
    m = make_mlp()
    with pytest.raises(NonFiniteLossError, match=r"val_loss=nan at epoch 1"):
        fit(m, torch.optim.SGD(m.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=3, verbose=False,
            callbacks=[EarlyStopping(1), Checkpoints(tmp_path)], accelerator=make_accelerator(cpu=True))
    assert not (tmp_path/"checkpoints"/"best").exists()    # nothing was saved as "best"

def test_nan_monitored_metric_raises():
    tdl, vdl = _dls()
    m = make_mlp()
    with pytest.raises(NonFiniteLossError, match=r"score=nan at epoch 1"):
        fit(m, torch.optim.SGD(m.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=2,
            metrics={"score": lambda p, t: float("nan")}, callbacks=[RestoreBest("score", "max")], verbose=False, accelerator=make_accelerator(cpu=True))

def test_nan_unmonitored_metric_is_only_reported():
    tdl, vdl = _dls()
    m = make_mlp()
    h = fit(m, torch.optim.SGD(m.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=1,
            metrics={"auc": lambda p, t: float("nan")}, verbose=False, accelerator=make_accelerator(cpu=True))
    assert h.final["auc"] != h.final["auc"] and len(h) == 1

# 2. killed before the first complete checkpoints/last: resume falls back to checkpoints/best
def test_resume_falls_back_to_best_when_last_is_missing(tmp_path, capsys):
    tdl, vdl = _dls()
    m = make_mlp()
    fit(m, torch.optim.SGD(m.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=2, verbose=False,
        callbacks=[Checkpoints(tmp_path)], accelerator=make_accelerator(cpu=True))
    ck = tmp_path/"checkpoints"
    best_epoch = json.loads((ck/"best"/"fit_state.json").read_text())["epoch"]
    shutil.rmtree(ck/"last"); (ck/".last.tmp").mkdir()        # killed while writing the first `last`
    capsys.readouterr()
    m2 = make_mlp()
    h = fit(m2, torch.optim.SGD(m2.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=3, verbose=True,
            callbacks=[Checkpoints(tmp_path, resume_from=tmp_path), ProgressBar(False)], accelerator=make_accelerator(cpu=True))
    out = capsys.readouterr().out
    assert "resuming from the newest complete checkpoint, checkpoints/best" in out and f"(epoch {best_epoch})" in out
    assert [r["epoch"] for r in h.rows] == list(range(1, 4))
    assert json.loads((ck/"last"/"fit_state.json").read_text())["epoch"] == 3

def test_resume_prefers_the_newest_complete_checkpoint(tmp_path):
    from accel_course.training import _find_checkpoint
    for name, ep in (("last", 2), ("best", 3)):
        (tmp_path/"checkpoints"/name).mkdir(parents=True)
        (tmp_path/"checkpoints"/name/"fit_state.json").write_text(json.dumps({"epoch": ep}))
    c, note = _find_checkpoint(tmp_path)
    assert c.name == "best" and "epoch 3" in note
    (tmp_path/"checkpoints"/"best"/"fit_state.json").write_text(json.dumps({"epoch": 2}))
    assert _find_checkpoint(tmp_path) == (tmp_path/"checkpoints"/"last", None)
    (tmp_path/"checkpoints"/"last"/"fit_state.json").unlink(); (tmp_path/"checkpoints"/"best"/"fit_state.json").unlink()
    with pytest.raises(FileNotFoundError, match="no checkpoint found"): _find_checkpoint(tmp_path)

# 3. outputs get the umask's permissions, not tempfile's private 0600/0700
@pytest.fixture
def umask022():
    old = os.umask(0o022)
    try: yield
    finally: os.umask(old)

def _mode(p): return stat.S_IMODE(os.stat(p).st_mode)

def test_atomic_writes_follow_the_umask(tmp_path, umask022):
    from accel_course.core import atomic_write_json, atomic_write_bytes, atomic_dir, current_umask
    assert current_umask() == 0o022
    assert _mode(atomic_write_json(tmp_path/"m.json", {"a": 1})) == 0o644
    with atomic_dir(tmp_path/"model") as d: (d/"w.bin").write_bytes(b"x")
    assert _mode(tmp_path/"model") == 0o755
    os.umask(0o077)
    assert _mode(atomic_write_bytes(tmp_path/"private.bin", b"x")) == 0o600

def test_fit_outputs_are_0644_under_umask_022(tmp_path, umask022):
    tdl, vdl = _dls()
    m = make_mlp()
    fit(m, torch.optim.SGD(m.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=1, verbose=False,
        callbacks=[Checkpoints(tmp_path)], accelerator=make_accelerator(cpu=True))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in files if _mode(p) != 0o644} == {}
    assert {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in tmp_path.rglob("*") if p.is_dir() and _mode(p) != 0o755} == {}


"""The shared `fit` engine: kill -9 and resume, NaN guard, determinism, atomic checkpoints, progress bars.

Tests that compare numbers bit for bit, or use the model on CPU tensors afterwards, train on `make_accelerator(cpu=True)`: CPU
determinism is what they check, and they must mean the same on a GPU machine."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from accel_course.training import (fit, toy_regression, make_mlp, make_accelerator, NonFiniteLossError, History,
                                   Checkpoints, EarlyStopping, ProgressBar, RestoreBest)

JOB = Path(__file__).with_name("_fit_job.py")
EPOCHS = 5

def _run(out, epochs=EPOCHS, resume=False, slow=0.0, every=0):
    return subprocess.run([sys.executable, str(JOB), str(out), str(epochs), "resume" if resume else "fresh", str(slow),
                           str(every)], capture_output=True, text=True, timeout=300)

def _last_pos(out):
    f = Path(out)/"checkpoints"/"last"/"fit_state.json"
    try: st = json.loads(f.read_text()); return st["epoch"], st.get("step", 0)
    except (FileNotFoundError, json.JSONDecodeError, KeyError): return 0, 0

def _last_epoch(out): return _last_pos(out)[0]

def _strip_time(rows): return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]

def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    ref = _run(tmp_path/"ref"); assert ref.returncode == 0, ref.stderr[-2000:]
    expected = json.loads((tmp_path/"ref"/"result.json").read_text())

    out = tmp_path/"killed"
    p = subprocess.Popen([sys.executable, str(JOB), str(out), str(EPOCHS), "fresh", "0.4"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.time()
    while _last_epoch(out) < 2:
        assert p.poll() is None, f"job ended before it could be killed: {p.stderr.read().decode()[-2000:]}"
        assert time.time() - t0 < 240, "timed out waiting for the second checkpoint"
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL
    done = _last_epoch(out)
    assert 2 <= done < EPOCHS, f"killed after epoch {done}: not mid-training"
    assert not (out/"result.json").exists()

    res = _run(out, resume=True); assert res.returncode == 0, res.stderr[-2000:]
    assert f"resumed from" in res.stdout
    got = json.loads((out/"result.json").read_text())
    assert _strip_time(got["rows"]) == _strip_time(expected["rows"])
    assert got["weights"] == expected["weights"]

def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    # checkpoints every 5 batches (25 per epoch); kill inside epoch 3 after a mid-epoch checkpoint, resume there
    ref = _run(tmp_path/"ref", every=5); assert ref.returncode == 0, ref.stderr[-2000:]
    expected = json.loads((tmp_path/"ref"/"result.json").read_text())
    out = tmp_path/"killed"
    p = subprocess.Popen([sys.executable, str(JOB), str(out), str(EPOCHS), "fresh", "1.0", "5"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.time()
    while not (_last_pos(out)[0] == 2 and _last_pos(out)[1] >= 10):
        assert p.poll() is None, f"job ended before it could be killed: {p.stderr.read().decode()[-2000:]}"
        assert time.time() - t0 < 240, "timed out waiting for a mid-epoch checkpoint"
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL); p.wait()
    epoch, step = _last_pos(out)
    assert epoch == 2 and 0 < step < 25, f"killed at {(epoch, step)}: not in the middle of epoch 3"
    res = _run(out, resume=True, every=5); assert res.returncode == 0, res.stderr[-2000:]
    assert f"at epoch 3, step {step}" in res.stdout
    got = json.loads((out/"result.json").read_text())
    assert _strip_time(got["rows"]) == _strip_time(expected["rows"])
    assert got["params"] == expected["params"]          # every weight, bit for bit

def _data(n=256, nan_at=None):
    X, y = toy_regression(n, seed=3)
    if nan_at is not None: X[nan_at, 0] = float("nan")
    return DataLoader(TensorDataset(X, y), batch_size=32, shuffle=False)

def test_nan_loss_raises_clear_error():
    m = make_mlp()
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 4"):
        fit(m, torch.optim.SGD(m.parameters(), lr=0.01), _data(nan_at=100), loss_fn=nn.MSELoss(), verbose=False)

def test_exploding_lr_is_caught_with_epoch_and_step():
    m = make_mlp()
    with pytest.raises(NonFiniteLossError, match=r"at epoch \d+, step \d+"):
        fit(m, torch.optim.SGD(m.parameters(), lr=1e6), _data(), loss_fn=nn.MSELoss(), epochs=5, verbose=False)

def _train(seed, mixed_precision=None, **kw):
    X, y = toy_regression(512, seed=0)
    tdl = DataLoader(TensorDataset(X[:400], y[:400]), batch_size=32, shuffle=True)
    vdl = DataLoader(TensorDataset(X[400:], y[400:]), batch_size=64)
    torch.manual_seed(seed); m = make_mlp(dropout=0.1)
    h = fit(m, torch.optim.AdamW(m.parameters(), lr=3e-3), tdl, vdl, loss_fn=nn.MSELoss(),
            metrics={"mae": lambda p, t: float(abs(p - t).mean())}, epochs=3, seed=seed, verbose=False,
            accelerator=make_accelerator(mixed_precision, cpu=True), **kw)
    return _strip_time(h.rows)

def test_same_seed_same_metrics_and_different_seed_differs():
    a, b, c = _train(1), _train(1), _train(2)
    assert a == b
    assert a != c

def test_bf16_on_cpu_trains_and_differs_from_fp32():
    fp32, bf16 = _train(1), _train(1, mixed_precision="bf16")
    assert bf16 != fp32                       # it really ran in another precision
    assert bf16[-1]["val_loss"] < 2 * fp32[0]["val_loss"]

def test_fp16_on_cpu_warns():
    with pytest.warns(UserWarning, match="fp16"):
        _train(1, mixed_precision="fp16")

def test_early_stopping_restores_best(tmp_path):
    X, y = toy_regression(256, seed=0)
    dl = DataLoader(TensorDataset(X, y), batch_size=32)
    m = make_mlp()
    # a small SGD step lowers val_loss every epoch; with mode="max" epoch 1 is the best and never beaten, so early
    # stopping must fire after 1 + patience epochs and put epoch 1's weights back
    h = fit(m, torch.optim.SGD(m.parameters(), lr=0.01), dl, dl, loss_fn=nn.MSELoss(), epochs=30,
            callbacks=[RestoreBest(mode="max"), EarlyStopping(2), Checkpoints(tmp_path)], verbose=False, accelerator=make_accelerator(cpu=True))
    assert h["val_loss"] == sorted(h["val_loss"], reverse=True) and h["val_loss"][0] > h["val_loss"][-1]
    assert len(h) == 3 and h.best_epoch == 1
    best_val = h.best_value
    with torch.no_grad(): now = nn.functional.mse_loss(m(X), y).item()
    assert abs(now - best_val) < 1e-4, "best weights were not restored"
    assert (tmp_path/"checkpoints"/"best"/"model.safetensors").exists()
    assert (tmp_path/"checkpoints"/"last"/"fit_state.json").exists()
    assert History.from_dict(json.loads((tmp_path/"history.json").read_text())).best_epoch == h.best_epoch

def test_crash_during_checkpoint_keeps_last_good(tmp_path, monkeypatch):
    import accelerate
    X, y = toy_regression(128, seed=0)
    dl = DataLoader(TensorDataset(X, y), batch_size=32)
    m = make_mlp(); opt = torch.optim.SGD(m.parameters(), lr=0.01)
    fit(m, opt, dl, dl, loss_fn=nn.MSELoss(), epochs=1, callbacks=[Checkpoints(tmp_path)], verbose=False)
    good = (tmp_path/"checkpoints"/"last"/"fit_state.json").read_text()
    orig = accelerate.Accelerator.save_state
    def broken(self, output_dir=None, **kw):
        orig(self, output_dir, **kw)
        raise OSError("disk full (simulated) during save_state")
    monkeypatch.setattr(accelerate.Accelerator, "save_state", broken)
    m2 = make_mlp()
    with pytest.raises(OSError, match="disk full"):
        fit(m2, torch.optim.SGD(m2.parameters(), lr=0.01), dl, dl, loss_fn=nn.MSELoss(), epochs=3,
            verbose=False, callbacks=[Checkpoints(tmp_path, resume_from=tmp_path)])
    assert (tmp_path/"checkpoints"/"last"/"fit_state.json").read_text() == good

def test_resume_from_missing_checkpoint_is_clear(tmp_path):
    m = make_mlp()
    with pytest.raises(FileNotFoundError, match="no checkpoint found"):
        fit(m, torch.optim.SGD(m.parameters(), lr=0.01), _data(), loss_fn=nn.MSELoss(), callbacks=[Checkpoints(tmp_path, resume_from=tmp_path)], verbose=False)

def test_dict_batches_use_model_loss():
    class HFLike(nn.Module):
        def __init__(self): super().__init__(); self.lin = nn.Linear(8, 2)
        def forward(self, input_ids, labels=None):
            logits = self.lin(input_ids)
            class O: pass
            o = O(); o.logits = logits; o.loss = nn.functional.cross_entropy(logits, labels); return o
    X, _ = toy_regression(128, seed=0); lab = (X[:, 0] > 0).long()
    ds = [{"input_ids": X[i], "labels": lab[i]} for i in range(128)]
    dl = DataLoader(ds, batch_size=16)
    m = HFLike()
    h = fit(m, torch.optim.AdamW(m.parameters(), lr=5e-2), dl, dl, epochs=8, verbose=False,
            metrics={"acc": lambda p, t: float((p.argmax(1) == t).mean())}, callbacks=[RestoreBest("acc", "max")])
    assert h.best_value > 0.8

def test_model_is_plain_after_mixed_precision_fit():
    X, y = toy_regression(128, seed=0)
    m = make_mlp(); seen = []
    fit(m, torch.optim.AdamW(m.parameters()), DataLoader(TensorDataset(X, y), batch_size=32), loss_fn=nn.MSELoss(),
        verbose=False, accelerator=make_accelerator("bf16", cpu=True))
    h = m[0].register_forward_hook(lambda mod, i, o: seen.append(o.dtype))
    with torch.no_grad(): m(X[:4])
    h.remove()
    assert seen == [torch.float32] and "_original_forward" not in m.__dict__

def test_progress_bar_closes_and_leaves_nothing(capsys):
    # leave=False: the per-step bar is erased at the end of each epoch (also when training fails), the epoch line stays
    X, y = toy_regression(128, seed=0)
    m = make_mlp()
    fit(m, torch.optim.SGD(m.parameters(), lr=0.01), DataLoader(TensorDataset(X, y), batch_size=32), loss_fn=nn.MSELoss(),
        epochs=2, callbacks=[ProgressBar(True)], accelerator=make_accelerator(cpu=True))
    out, err = capsys.readouterr()
    assert out.count("epoch ") == 2 and "it/s" not in out          # epoch lines on stdout, no bar there
    assert "epoch 1/2" in err and "epoch 2/2" in err                      # a bar was drawn for each epoch ...
    assert err.endswith("\r") and err.rstrip("\r").split("\r")[-1].strip() == ""   # ... and erased at its end
    m2 = make_mlp()
    with pytest.raises(NonFiniteLossError):
        fit(m2, torch.optim.SGD(m2.parameters(), lr=0.01), _data(nan_at=40), loss_fn=nn.MSELoss(), callbacks=[ProgressBar(True)], accelerator=make_accelerator(cpu=True))
    from tqdm import tqdm
    assert not [b for b in tqdm._instances if not b.disable], "a progress bar was left open after an error"

def test_progress_bar_is_text_in_a_launched_worker(monkeypatch):
    from tqdm.std import tqdm as text_tqdm
    from accel_course.training import _progress_bar
    monkeypatch.setenv("LOCAL_RANK", "0")
    b = _progress_bar(3, "epoch 1/1", disable=True)
    assert type(b) is text_tqdm and b.leave is False
    b.close()

def test_tqdm_disable_env_turns_the_bar_off():
    # the learner-run check records outputs with TQDM_DISABLE=1 (tqdm reads it at import): fit must not override it
    # with an explicit disable=False
    code = ("import torch; from torch import nn; from torch.utils.data import DataLoader, TensorDataset\n"
            "from accel_course.training import fit, toy_regression, make_mlp, make_accelerator\n"
            "X, y = toy_regression(128, seed=0); m = make_mlp()\n"
            "fit(m, torch.optim.SGD(m.parameters(), lr=0.01), DataLoader(TensorDataset(X, y), batch_size=32),"
            " loss_fn=nn.MSELoss(), epochs=1, accelerator=make_accelerator(cpu=True))\n")
    env = {**os.environ, "TQDM_DISABLE": "1", "ACCEL_COURSE_FAST": "0"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "epoch 1/1" in p.stdout and "it/s" not in p.stderr, p.stderr[-2000:]

def test_no_widget_bar_in_a_jupyter_kernel_with_tqdm_disable():
    # in a kernel tqdm.auto is tqdm.notebook, which ignores TQDM_DISABLE by itself: saved notebooks got widget bars
    nbformat = pytest.importorskip("nbformat"); nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import torch; from torch import nn; from torch.utils.data import DataLoader, TensorDataset\n"
        "from accel_course.training import fit, toy_regression, make_mlp, make_accelerator\n"
        "X, y = toy_regression(256, seed=0); m = make_mlp()\n"
        "h = fit(m, torch.optim.SGD(m.parameters(), lr=0.01), DataLoader(TensorDataset(X, y), batch_size=32),"
        " loss_fn=nn.MSELoss(), epochs=2, accelerator=make_accelerator(cpu=True))")]
    env = {**os.environ, "TQDM_DISABLE": "1", "ACCEL_COURSE_FAST": "0"}
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute(env=env)
    outs = nb.cells[0].outputs
    assert not [o for o in outs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})], outs
    assert "".join(o.get("text", "") for o in outs).count("epoch ") == 2, outs

def _seeded_mlp(seed=0):
    torch.manual_seed(seed)
    return make_mlp()

def test_fit_arrays_is_the_five_steps_by_hand():
    "`fit_arrays` = seeded `array_loaders` + AdamW + one-cycle + `fit`, to the last bit of every epoch's record."
    from accel_course.training import fit_arrays, array_loaders, LRScheduler
    X, y = toy_regression(300, seed=2)
    kw = dict(loss_fn=nn.MSELoss(), epochs=3, accelerator=make_accelerator(cpu=True))
    h = fit_arrays(_seeded_mlp(), X[:240], y[:240], X[240:], y[240:], lr=3e-3, schedule="onecycle", batch_size=32, **kw)
    m = _seeded_mlp()
    tdl, vdl = array_loaders(X[:240], y[:240], X[240:], y[240:], batch_size=32, valid_batch_size=1024, seed=0)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=3 * len(tdl))
    ref = fit(m, opt, tdl, vdl, seed=0, verbose=False, callbacks=[ProgressBar(False), LRScheduler(sched)], **kw)
    assert _strip_time(h.rows) == _strip_time(ref.rows) and len(h.rows) == 3

def test_fit_arrays_schedule_spans_the_steps_it_really_takes():
    "With `max_steps_per_epoch`, one-cycle spans the 6 updates really made: the last one uses the schedule's minimum."
    from accel_course.training import fit_arrays, Callback
    seen = []
    class LastLR(Callback):   # the rate each update uses (before_step: between backward and the update)
        def before_step(self, s): seen.append(s.optimizer.param_groups[0]["lr"])
    X, y = toy_regression(640, seed=3)
    fit_arrays(_seeded_mlp(), X, y, loss_fn=nn.MSELoss(), epochs=2, batch_size=32, lr=1e-2, schedule="onecycle",
               max_steps_per_epoch=3, callbacks=[LastLR()], accelerator=make_accelerator(cpu=True))
    assert len(seen) == 6 and seen[-1] == pytest.approx(1e-2 / 25 / 1e4, rel=1e-6)   # max_lr / 25 / 1e4
    assert max(seen) < 1e-2 and seen[0] == pytest.approx(1e-2 / 25, rel=1e-6)   # warm-up from max_lr / 25

def test_fit_arrays_refuses_an_unknown_schedule_before_training():
    from accel_course.training import fit_arrays
    X, y = toy_regression(64)
    with pytest.raises(ValueError, match="schedule must be None, 'onecycle' or 'cosine', got 'linear'"):
        fit_arrays(_seeded_mlp(), X, y, loss_fn=nn.MSELoss(), schedule="linear")

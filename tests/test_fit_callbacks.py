"""`fit`'s signature and callbacks (issue 11): every option visible, conflicting options raise, callbacks see every
batch and epoch, and `CancelFitException` ends a fit cleanly."""
import inspect
from dataclasses import fields
import pytest, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from accel_course.training import (fit, FitConfig, Callback, CancelFitException, make_accelerator, make_mlp,
                                   toy_regression)

def _data(n=256):
    X, y = toy_regression(n, seed=0)
    return DataLoader(TensorDataset(X, y), batch_size=32), DataLoader(TensorDataset(X[:64], y[:64]), batch_size=64)

def _fit(**kw):
    torch.manual_seed(0); m = make_mlp(); tdl, vdl = _data()
    return m, fit(m, torch.optim.SGD(m.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), progress=False,
                  verbose=False, cpu=True, **kw)

def test_signature_shows_every_option_with_fitconfig_defaults():
    sig = inspect.signature(fit)
    assert not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()), "fit hides options behind **kwargs"
    assert "callbacks" in sig.parameters
    for f in fields(FitConfig):
        assert f.name in sig.parameters, f"FitConfig.{f.name} is not an argument of fit"
        assert sig.parameters[f.name].default == f.default, f"default of {f.name}: fit {sig.parameters[f.name].default!r} vs FitConfig {f.default!r}"
    with pytest.raises(TypeError): _fit(epoch=2)      # a typo is an error, not a silently ignored option

@pytest.mark.parametrize("opt,match", [(dict(mixed_precision="bf16"), "mixed_precision='bf16'"),
                                       (dict(grad_accum_steps=4), "grad_accum_steps=4"),
                                       (dict(log_with="tensorboard"), "log_with='tensorboard'")])
def test_conflicting_options_raise(opt, match):
    acc = make_accelerator(cpu=True)        # precision "no", no accumulation, no trackers
    with pytest.raises(ValueError, match=rf"conflicts with {match}"): _fit(accelerator=acc, **opt)

def test_options_that_agree_with_the_accelerator_are_fine():
    acc = make_accelerator("bf16", grad_accum_steps=2, cpu=True)
    _, h = _fit(accelerator=acc, mixed_precision="bf16", grad_accum_steps=2, epochs=1)
    assert len(h) == 1

@pytest.mark.parametrize("opt", [dict(scheduler_step="step"), dict(mode="maximum"), dict(epochs=-1), dict(grad_accum_steps=0)])
def test_bad_option_values_raise(opt):
    with pytest.raises(ValueError): _fit(**opt)

class Recorder(Callback):
    def __init__(self): self.events, self.epochs, self.steps = [], [], 0
    def before_fit(self, s): self.events.append("before_fit")
    def after_batch(self, s): self.steps += 1; assert s.loss is not None and s.step >= 1
    def after_epoch(self, s): self.epochs.append((s.epoch, s.row["epoch"], s.row["val_loss"]))
    def after_fit(self, s): self.events.append("after_fit")

def test_a_callback_sees_every_batch_and_epoch():
    rec = Recorder()
    _, h = _fit(epochs=4, callbacks=[rec])
    assert rec.events == ["before_fit", "after_fit"]
    assert rec.steps == 4 * 8                               # 256 samples / batch 32, 4 epochs
    assert [e for e, _, _ in rec.epochs] == [1, 2, 3, 4] == [r for _, r, _ in rec.epochs]
    assert [v for *_, v in rec.epochs] == h["val_loss"]

def test_plain_objects_and_several_callbacks_in_order():
    seen = []
    class A:
        def after_epoch(self, s): seen.append(("A", s.epoch))
    class B:
        def after_epoch(self, s): seen.append(("B", s.epoch))
    _fit(epochs=2, callbacks=[A(), B()])
    assert seen == [("A", 1), ("B", 1), ("A", 2), ("B", 2)]

def test_cancel_in_after_batch_ends_the_epoch_and_the_fit(tmp_path):
    class StopAt:
        def after_batch(self, s):
            if s.epoch == 2 and s.step == 3: raise CancelFitException()
    m, h = _fit(epochs=5, callbacks=[StopAt()], output_dir=tmp_path)
    assert h["epoch"] == [1, 2] and "val_loss" in h.final     # epoch 2 was still evaluated and recorded
    assert (tmp_path/"checkpoints"/"last"/"fit_state.json").exists()

def test_cancel_in_after_epoch_stops_after_that_epoch():
    class TwoEpochs:
        def after_epoch(self, s):
            if s.epoch >= 2: raise CancelFitException()
    _, h = _fit(epochs=6, callbacks=[TwoEpochs()])
    assert len(h) == 2

def test_importing_does_not_patch_accelerate():
    import subprocess, sys
    code = ("import accelerate.optimizer as a; import accel_course.training; "
            "print(hasattr(a.is_lomo_available, 'cache_info'))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    make_accelerator(cpu=True)
    import accelerate.optimizer as a
    assert hasattr(a.is_lomo_available, "cache_info")

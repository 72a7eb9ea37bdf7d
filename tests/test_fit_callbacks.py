"""`fit` grows by callbacks (issue 21): a short signature, options that conflict raise, callbacks see every place of
the loop in `order`, defaults are replaced by class, and the loop features -- early stopping, checkpoints, trackers,
step caps, a stop seen by one rank -- are callbacks."""
import inspect, json, textwrap
import pytest, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from accel_course.training import (fit, Callback, GradientAccumulation, ClipGradNorm, CancelFitException,
                                   CancelEpochException, make_accelerator, make_mlp,
                                   toy_regression, default_callbacks, ProgressBar, PrintEpochs, RestoreBest,
                                   EarlyStopping, Checkpoints, Trackers, MaxStepsPerEpoch, StopWhen)
from _real import torchrun

def _data(n=256):
    X, y = toy_regression(n, seed=0)
    return DataLoader(TensorDataset(X, y), batch_size=32), DataLoader(TensorDataset(X[:64], y[:64]), batch_size=64)

def _fit(accelerator=None, **kw):
    torch.manual_seed(0); m = make_mlp(); tdl, vdl = _data()
    return m, fit(m, torch.optim.SGD(m.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), verbose=False,
                  accelerator=accelerator or make_accelerator(cpu=True), **kw)

def test_signature_is_short_and_explicit():
    sig = inspect.signature(fit)
    assert not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()), "fit hides options behind **kwargs"
    assert len(sig.parameters) <= 13, list(sig.parameters)
    for gone in ("patience", "output_dir", "resume_from", "log_with", "progress", "restore_best", "max_steps_per_epoch",
                 "grad_accum_steps", "clip_grad_norm", "scheduler", "monitor", "mode"):
        assert gone not in sig.parameters, f"{gone} is a callback now"
    with pytest.raises(TypeError): _fit(patience=2)      # an old option is an error, not silently ignored

@pytest.mark.parametrize("opt,match", [(dict(mixed_precision="bf16"), "mixed_precision='bf16'"),
                                       (dict(callbacks=[GradientAccumulation(4)]), r"GradientAccumulation\(4\)")])
def test_conflicting_options_raise(opt, match):
    acc = make_accelerator(cpu=True)        # precision "no", no accumulation, no trackers
    with pytest.raises(ValueError, match=rf"conflicts with {match}"): _fit(accelerator=acc, **opt)

def test_trackers_need_an_accelerator_with_log_with(tmp_path):
    with pytest.raises(ValueError, match=r"Trackers\('tensorboard'\) needs an accelerator made with log_with"):
        _fit(callbacks=[Trackers("tensorboard", tmp_path)])

def test_trackers_callback_makes_its_accelerator_and_logs(tmp_path):
    torch.manual_seed(0); m = make_mlp(); tdl, vdl = _data()
    fit(m, torch.optim.SGD(m.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=2, verbose=False,
        callbacks=[Trackers("tensorboard", tmp_path)])
    assert list((tmp_path/"logs").rglob("events.out.tfevents*"))

def test_options_that_agree_with_the_accelerator_are_fine():
    acc = make_accelerator("bf16", grad_accum_steps=2, cpu=True)
    _, h = _fit(accelerator=acc, mixed_precision="bf16", callbacks=[GradientAccumulation(2)], epochs=1)
    assert len(h) == 1

@pytest.mark.parametrize("opt", [dict(callbacks=[RestoreBest(mode="maximum")]), dict(epochs=-1),
                                 dict(callbacks=[RestoreBest("acc")])])
def test_bad_option_values_raise(opt):
    with pytest.raises(ValueError): _fit(**opt)

def test_restore_best_wants_a_name():
    with pytest.raises(TypeError, match="monitor must be a name"): RestoreBest(False)

@pytest.mark.parametrize("steps", [0, -1, 1.5])
def test_bad_accumulation_raises(steps):
    with pytest.raises(ValueError, match="steps must be an integer >= 1"): GradientAccumulation(steps)

def test_clipping_happens_between_backward_and_step_on_real_steps_only():
    "ClipGradNorm sees the accumulated gradient of every k-th batch (a sync step), and the clipped norm is applied."
    seen = []
    class Spy(Callback):
        order = 10                         # after ClipGradNorm (order 0)
        def before_step(self, s):
            norm = torch.sqrt(sum((p.grad ** 2).sum() for p in s.model.parameters() if p.grad is not None))
            seen.append((s.step, s.accelerator.sync_gradients, float(norm)))
    _fit(make_accelerator(grad_accum_steps=2, cpu=True), callbacks=[GradientAccumulation(2), ClipGradNorm(1e-3), Spy()],
         epochs=1)
    assert [sync for _, sync, _ in seen] == [k % 2 == 0 for k, _, _ in seen]     # a sync step every 2nd batch
    assert all(n <= 1e-3 * 1.001 for _, sync, n in seen if sync)                  # clipped before the step
    assert any(n > 1e-3 for _, sync, n in seen if not sync)                       # not clipped in between

class Recorder(Callback):
    def __init__(self): self.events, self.epochs, self.steps = [], [], 0
    def before_fit(self, s): self.events.append("before_fit")
    def before_epoch(self, s): self.events.append(f"before_epoch{s.epoch}")
    def after_batch(self, s): self.steps += 1; assert s.loss is not None and s.step >= 1
    def before_validate(self, s): self.events.append("before_validate")
    def after_epoch(self, s): self.epochs.append((s.epoch, s.row["epoch"], s.row["val_loss"]))
    def after_fit(self, s): self.events.append("after_fit")
    def cleanup_fit(self, s): self.events.append("cleanup_fit")

def test_a_callback_sees_every_place_of_the_loop():
    rec = Recorder()
    _, h = _fit(epochs=2, callbacks=[rec])
    assert rec.events == ["before_fit", "before_epoch1", "before_validate", "before_epoch2", "before_validate",
                          "after_fit", "cleanup_fit"]
    assert rec.steps == 2 * 8                               # 256 samples / batch 32, 2 epochs
    assert [e for e, _, _ in rec.epochs] == [1, 2] == [r for _, r, _ in rec.epochs]
    assert [v for *_, v in rec.epochs] == h["val_loss"]

def test_cleanup_runs_after_an_error():
    rec = Recorder()
    class Boom(Callback):
        def after_batch(self, s): raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"): _fit(epochs=2, callbacks=[rec, Boom()])
    assert rec.events[-1] == "cleanup_fit" and "after_fit" not in rec.events

def test_callbacks_run_in_order_then_as_given():
    seen = []
    class A:
        order = 5
        def after_epoch(self, s): seen.append(("A", s.epoch))
    class B:
        def after_epoch(self, s): seen.append(("B", s.epoch))
    class C:
        order = -1
        def after_epoch(self, s): seen.append(("C", s.epoch))
    _fit(epochs=2, callbacks=[A(), B(), C()])
    assert seen == [("C", 1), ("B", 1), ("A", 1), ("C", 2), ("B", 2), ("A", 2)]

def test_a_given_callback_replaces_the_default_of_its_class():
    from accel_course.training import _callbacks
    assert [type(c) for c in default_callbacks(True)] == [ProgressBar, PrintEpochs, RestoreBest]
    assert [type(c) for c in default_callbacks(False)] == [RestoreBest]
    cbs = _callbacks([ProgressBar(False), EarlyStopping(2)], verbose=True)
    assert [type(c) for c in cbs] == [RestoreBest, PrintEpochs, EarlyStopping, ProgressBar]   # sorted by `order`
    assert cbs[3].show is False

def test_restore_best_false_keeps_the_last_weights():
    X, y = toy_regression(256, seed=0); dl = DataLoader(TensorDataset(X, y), batch_size=32)
    def run(enabled):
        torch.manual_seed(0); m = make_mlp()
        h = fit(m, torch.optim.SGD(m.parameters(), lr=0.01), dl, dl, loss_fn=nn.MSELoss(), epochs=3,
                verbose=False, callbacks=[RestoreBest(mode="max", enabled=e) for e in enabled], accelerator=make_accelerator(cpu=True))
        with torch.no_grad(): return h, nn.functional.mse_loss(m(X), y).item()
    h, best = run([True]); _, last = run([False])
    assert h.best_epoch == 1 and abs(best - h["val_loss"][0]) < 1e-5 and abs(last - h["val_loss"][-1]) < 1e-5

def test_cancel_in_after_batch_ends_the_epoch_and_the_fit(tmp_path):
    class StopAt:
        def after_batch(self, s):
            if s.epoch == 2 and s.step == 3: raise CancelFitException()
    m, h = _fit(epochs=5, callbacks=[StopAt(), Checkpoints(tmp_path)])
    assert h["epoch"] == [1, 2] and "val_loss" in h.final     # epoch 2 was still evaluated and recorded
    assert json.loads((tmp_path/"checkpoints"/"last"/"fit_state.json").read_text())["epoch"] == 2

def test_cancel_epoch_and_max_steps_per_epoch():
    class Count(Callback):
        def __init__(self): self.per_epoch = {}
        def after_batch(self, s): self.per_epoch[s.epoch] = s.step
    c = Count(); _, h = _fit(epochs=2, callbacks=[c, MaxStepsPerEpoch(3)])
    assert c.per_epoch == {1: 3, 2: 3} and len(h) == 2
    class Half(Callback):
        def after_batch(self, s):
            if s.step == 4: raise CancelEpochException()
    c = Count(); _, h = _fit(epochs=2, callbacks=[c, Half()])
    assert c.per_epoch == {1: 4, 2: 4} and len(h) == 2 and "val_loss" in h.final

def test_cancel_in_after_epoch_stops_after_that_epoch():
    class TwoEpochs:
        def after_epoch(self, s):
            if s.epoch >= 2: raise CancelFitException()
    _, h = _fit(epochs=6, callbacks=[TwoEpochs()])
    assert len(h) == 2

def test_early_stopping_none_never_stops():
    _, h = _fit(epochs=4, callbacks=[RestoreBest(mode="max"), EarlyStopping(None)])
    assert len(h) == 4

def test_resume_from_another_model_is_refused_before_loading(tmp_path):
    _fit(epochs=1, callbacks=[Checkpoints(tmp_path)])
    tdl, vdl = _data(); other = make_mlp(hidden=32)
    with pytest.raises(ValueError, match=r"holds another model .*resume with the model that wrote it"):
        fit(other, torch.optim.SGD(other.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=2,
            verbose=False, callbacks=[Checkpoints(tmp_path/"new", resume_from=tmp_path)])
    assert not (tmp_path/"new").exists()

def test_a_stop_seen_by_rank_1_alone_stops_both_ranks_at_the_same_step(tmp_path):
    script = tmp_path/"stop.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, torch
        from torch import nn
        from torch.utils.data import DataLoader, TensorDataset
        from accel_course.training import fit, toy_regression, make_mlp, StopWhen
        X, y = toy_regression(1024, seed=0)
        rank = int(os.environ["RANK"])
        stop = StopWhen(lambda s: rank == 1 and s.epoch == 2 and s.step == 5)   # only rank 1 sees it
        steps = []
        class Steps:
            def after_batch(self, s): steps.append((s.epoch, s.step))
        torch.manual_seed(0); m = make_mlp()
        h = fit(m, torch.optim.SGD(m.parameters(), lr=0.01), DataLoader(TensorDataset(X, y), batch_size=32),
                DataLoader(TensorDataset(X[:64], y[:64]), batch_size=32), loss_fn=nn.MSELoss(), epochs=5,
                verbose=False, callbacks=[stop, Steps()])
        json.dump(dict(stopped_at=stop.stopped_at, last=steps[-1], epochs=len(h)),
                  open({str(tmp_path)!r} + f"/r{{rank}}.json", "w"))
    """))
    p = torchrun(script, env={"ACCELERATE_USE_CPU": "yes"})
    assert p.returncode == 0, p.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path/f"r{k}.json").read_text()) for k in (0, 1))
    assert r0["stopped_at"] == r1["stopped_at"] == [2, 5], (r0, r1)
    assert r0["last"] == r1["last"] == [2, 5] and r0["epochs"] == r1["epochs"] == 2

def test_importing_does_not_patch_accelerate():
    import subprocess, sys
    code = ("import accelerate.optimizer as a; import accel_course.training; "
            "print(hasattr(a.is_lomo_available, 'cache_info'))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    make_accelerator(cpu=True)
    import accelerate.optimizer as a
    assert hasattr(a.is_lomo_available, "cache_info")

def test_profile_prints_operators_writes_a_trace_and_stops_on_errors(tmp_path):
    from accel_course.training import Profile
    prof = Profile(steps=3, trace_dir=tmp_path/"trace")
    _fit(epochs=1, callbacks=[prof])
    assert "aten::" in prof.table(5) and (tmp_path/"trace"/"profile_0.json").stat().st_size > 1000
    class Boom(Callback):
        def after_batch(self, s): raise RuntimeError("boom")
    prof2 = Profile(steps=50)
    with pytest.raises(RuntimeError): _fit(epochs=1, callbacks=[prof2, Boom()])
    assert prof2._cm is None and torch.autograd.profiler._is_profiler_enabled is False

def test_comm_hook_options_are_checked():
    from accel_course.training import CommHook
    with pytest.raises(ValueError, match=r"CommHook\('int8'\): expected one of"): CommHook("int8")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="needs CUDA and NCCL"): CommHook("bf16")
    assert CommHook("fp16").accelerator_kwargs["kwargs_handlers"][0].comm_hook.value == "fp16"

def test_local_sgd_and_fp16_hook_on_two_processes(tmp_path):
    script = tmp_path/"comm.py"
    script.write_text(textwrap.dedent(f"""
        import json, torch
        import torch.distributed as dist
        from torch import nn
        from torch.utils.data import DataLoader, TensorDataset
        from accel_course.training import fit, toy_regression, make_mlp, LocalSGDCallback, CommHook
        X, y = toy_regression(1024, seed=0)
        out = {{}}
        for name, cbs in [("plain", []), ("local", [LocalSGDCallback(4)]), ("fp16", [CommHook("fp16")])]:
            torch.manual_seed(0); m = make_mlp()
            h = fit(m, torch.optim.SGD(m.parameters(), lr=0.05), DataLoader(TensorDataset(X[:896], y[:896]), batch_size=32),
                    DataLoader(TensorDataset(X[896:], y[896:]), batch_size=64), loss_fn=nn.MSELoss(), epochs=2,
                    verbose=False, callbacks=cbs)
            w = torch.cat([p.detach().flatten() for p in m.parameters()]); ws = [torch.zeros_like(w) for _ in range(2)]
            dist.all_gather(ws, w)
            out[name] = dict(val=h.final["val_loss"], same=bool(torch.equal(ws[0], ws[1])),
                             syncs=cbs[0].syncs if name == "local" else None)
        if dist.get_rank() == 0: json.dump(out, open({str(tmp_path/'r.json')!r}, "w"))
    """))
    p = torchrun(script, env={"ACCELERATE_USE_CPU": "yes", "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads((tmp_path/"r.json").read_text())
    assert all(v["same"] for v in r.values()), r                  # every rank ends with the same weights
    assert r["local"]["syncs"] == 2 * 14 // 4 + 1, r              # 14 steps per rank and epoch, every 4th + the last
    assert r["fp16"]["val"] != r["plain"]["val"] and abs(r["fp16"]["val"] - r["plain"]["val"]) < 0.05 * r["plain"]["val"]

RUN_JOB = textwrap.dedent("""
    import os, sys, torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    from accel_course.training import fit, make_mlp, toy_regression, Callback
    class Die(Callback):                     # the machine dies: no cleanup, no exception handling
        def after_batch(self, s):
            if (s.epoch, s.step) == (3, 7): os._exit(9)
    class StopAt(Callback):                  # a callback ends the first fit early (as EarlyStopping would)
        def after_epoch(self, s): s.stop = s.stop or s.epoch == 2
    X, y = toy_regression(512, seed=0)
    weights = []
    for k in range(2):
        torch.manual_seed(k); m = make_mlp()
        dl = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
        vdl = DataLoader(TensorDataset(X[:64], y[:64]), batch_size=64)
        cbs = ([StopAt()] if k == 0 and sys.argv[2] != "restart" else []) + ([Die()] if k == 1 and sys.argv[2] == "die" else [])
        h = fit(m, torch.optim.AdamW(m.parameters(), lr=3e-3), dl, vdl, loss_fn=nn.MSELoss(), epochs=5, seed=k,
                verbose=False, callbacks=cbs)
        weights.append(torch.cat([p.detach().flatten() for p in m.parameters()])); print("epochs", k, len(h))
    torch.save(weights, sys.argv[1] + "/weights.pt")
""")

def test_a_restarted_job_resumes_every_fit_from_its_checkpoints(tmp_path):
    """`ACCEL_COURSE_CHECKPOINTS` (what `accel-course run --checkpoints` sets): a job of two fits dies inside the
    second one (epoch 3, batch 7); run again, the first fit (stopped early at epoch 2) stays stopped and only restores
    its weights, the second continues at its newest checkpoint (step 6) -- final weights equal an uninterrupted job's."""
    import os, subprocess, sys
    script = tmp_path/"job.py"; script.write_text(RUN_JOB)
    def job(folder, mode):
        folder.mkdir(exist_ok=True)
        env = {**os.environ, "ACCEL_COURSE_CHECKPOINTS": str(folder/"ck"), "ACCEL_COURSE_CHECKPOINT_EVERY": "3"}
        return subprocess.run([sys.executable, str(script), str(folder), mode], capture_output=True, text=True,
                              env=env, timeout=300)
    whole = job(tmp_path/"whole", "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    died = job(tmp_path/"cut", "die")
    assert died.returncode == 9 and not (tmp_path/"cut"/"weights.pt").exists()
    again = job(tmp_path/"cut", "restart")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "fit-000/checkpoints/last after epoch 2" in again.stdout and "epochs 0 2" in again.stdout   # no 3rd epoch
    assert "fit-001/checkpoints/last at epoch 3, step 6" in again.stdout
    a, b = (torch.load(tmp_path/d/"weights.pt") for d in ("whole", "cut"))
    assert all(torch.equal(x, y) for x, y in zip(a, b))

DDP_JOB = textwrap.dedent("""
    import json, os, sys, torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    from accel_course.training import fit, make_mlp, toy_regression, Callback
    class Die(Callback):
        def after_batch(self, s):
            if (s.epoch, s.step) == (2, 5): os._exit(9)
    X, y = toy_regression(512, seed=0)
    torch.manual_seed(0); m = make_mlp()
    dl = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
    vdl = DataLoader(TensorDataset(X[:64], y[:64]), batch_size=64)
    h = fit(m, torch.optim.AdamW(m.parameters(), lr=3e-3), dl, vdl, loss_fn=nn.MSELoss(), epochs=3, seed=0,
            verbose=False, callbacks=[Die()] if sys.argv[2] == "die" else [])
    if int(os.environ["RANK"]) == 0:
        torch.save(torch.cat([p.detach().flatten() for p in m.parameters()]), sys.argv[1] + "/w.pt")
        json.dump([{k: v for k, v in r.items() if k != "time_s"} for r in h.rows], open(sys.argv[1] + "/h.json", "w"))
""")

def test_mid_epoch_resume_on_two_processes_is_exact(tmp_path):
    """Two processes (DDP over gloo): killed in epoch 2 after step 5, resumed at its step-4 checkpoint. Each rank gets
    its own running loss back and the shared shuffle generator is seeded per epoch, so weights and history equal an
    uninterrupted run's, bit for bit."""
    script = tmp_path/"ddp.py"; script.write_text(DDP_JOB)
    def job(name, mode):
        (tmp_path/name).mkdir(exist_ok=True)
        return torchrun(script, tmp_path/name, mode, env={"ACCELERATE_USE_CPU": "yes", "OMP_NUM_THREADS": "1",
                        "ACCEL_COURSE_CHECKPOINTS": str(tmp_path/name/"ck"), "ACCEL_COURSE_CHECKPOINT_EVERY": "2"})
    assert job("whole", "whole").returncode == 0
    assert job("cut", "die").returncode != 0 and not (tmp_path/"cut"/"w.pt").exists()
    again = job("cut", "restart")
    assert again.returncode == 0 and "at epoch 2, step 4" in again.stdout, again.stderr[-2000:]
    assert torch.equal(torch.load(tmp_path/"whole"/"w.pt"), torch.load(tmp_path/"cut"/"w.pt"))
    assert json.loads((tmp_path/"whole"/"h.json").read_text()) == json.loads((tmp_path/"cut"/"h.json").read_text())


def test_lr_scheduler_steps_once_per_real_optimizer_step():
    "Under GradientAccumulation(2) the prepared schedule advances every 2nd batch: 4 steps per epoch of 8 batches."
    from accel_course.training import LRScheduler
    X, y = toy_regression(128, seed=0); dl = DataLoader(TensorDataset(X, y), batch_size=16)    # 8 batches
    m = make_mlp(); opt = torch.optim.SGD(m.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 ** k)
    lrs = []
    class Rec(Callback):
        order = 0                    # after LRScheduler (order -40)
        def after_batch(self, s): lrs.append(s.optimizer.param_groups[0]["lr"])
    fit(m, opt, dl, loss_fn=nn.MSELoss(), epochs=2, verbose=False,
        callbacks=[GradientAccumulation(2), LRScheduler(sched), Rec()])
    assert lrs == pytest.approx([0.01 * 0.5 ** ((i + 1) // 2) for i in range(16)]), lrs
    m2 = make_mlp(); opt2 = torch.optim.SGD(m2.parameters(), lr=0.01)
    fit(m2, opt2, dl, loss_fn=nn.MSELoss(), epochs=1, verbose=False, callbacks=[LRScheduler(None)])   # a constant rate
    assert opt2.param_groups[0]["lr"] == 0.01

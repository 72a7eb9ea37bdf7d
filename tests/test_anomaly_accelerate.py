"""Tests for the Accelerate features of the anomaly chapter (issue 21): the matrices cache under `main_process_first`,
scoring split between processes, `find_executable_batch_size`, the profiler, and compilation (`dynamo_backend`)."""
import json, subprocess, sys, textwrap

import numpy as np
import pytest
import torch

from accel_course import anomaly as an
from accel_course.training import array_loader, make_accelerator, predict, torch_threads
from _real import REPO, torchrun

CPU = {"ACCELERATE_USE_CPU": "yes", "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setenv("ACCEL_COURSE_FAST", "1")


def _small(n=1500, seed=0):
    d = an.generate_traffic(n, seed=seed)
    sp = an.make_splits(d)
    return sp, an.FlowPreprocessor().fit(sp.train_normal)


def _pipeline(tmp_path):
    sp, pre = _small()
    Xn = pre.transform(sp.train_normal)
    with torch_threads(1):
        ae, _ = an.train_autoencoder(Xn, epochs=1, batch_size=128, seed=0)
    return an.AnomalyPipeline(pre, ae, 0.5, an.error_stats(ae, Xn)).save(tmp_path/"pipeline")


# ---------------------------------------------------------------- the cache and main_process_first
def test_cached_matrices_write_once_then_read(tmp_path):
    sp, pre = _small()
    m1, i1 = an.cached_matrices(pre, sp, tmp_path)
    m2, i2 = an.cached_matrices(pre, sp, tmp_path)
    assert i1["wrote"] and not i2["wrote"] and len(list(tmp_path.glob("matrices-*.npz"))) == 1
    ref = an._Matrices.of(pre, sp)
    for k in ("Xn", "Xv", "Xt", "yv", "yt"): assert np.array_equal(getattr(m2, k), getattr(ref, k)), k
    assert list(m2.ct) == list(ref.ct)                                # categories as text, not pickled objects
    other = an.FlowPreprocessor(an.FEATURES[:10]).fit(sp.train_normal)
    assert an.matrices_key(other, sp) != an.matrices_key(pre, sp)     # another preprocessor: another cache file


def test_main_process_first_one_writer_two_processes(tmp_path):
    "Two ranks reach an empty cache together: without the guard both build and write, with it exactly one does."
    script = tmp_path/"job.py"
    script.write_text(textwrap.dedent(f"""
        import json, time
        from accel_course import anomaly as an
        of = an._Matrices.of
        def slow_of(*a):               # building takes a second: the race window of a large data set
            time.sleep(1.0); return of(*a)
        an._Matrices.of = slow_of
        res = an.cache_worker({str(tmp_path/'cache')!r}, 1500)
        from accelerate import PartialState
        state = PartialState()
        if state.is_main_process: json.dump(res, open({str(tmp_path/'res.json')!r}, "w"))
        state.wait_for_everyone(); state.destroy_process_group()     # a clean exit for gloo
    """))
    p = torchrun(script, env=CPU)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((tmp_path/"res.json").read_text())
    race, first = res["no guard"], res["main_process_first"]
    assert sum(i["wrote"] for i in race) == 2, race                  # the race: both ranks built and wrote
    assert sum(i["wrote"] for i in first) == 1, first                # the guard: one wrote ...
    assert [i["wrote"] for i in sorted(first, key=lambda i: i["rank"])] == [True, False]   # ... rank 0, rank 1 read
    assert len({i["digest"] for i in race + first}) == 1             # the same matrices everywhere


# ---------------------------------------------------------------- distributed inference
def test_score_split_two_processes_uneven_equals_one(tmp_path):
    path = _pipeline(tmp_path)
    n = 1001                                                         # odd: shares of 501 and 500
    script = tmp_path/"score.py"
    script.write_text(textwrap.dedent(f"""
        import numpy as np
        from accel_course import anomaly as an
        from accelerate import PartialState
        df = an.generate_traffic({n}, seed=5).df.iloc[:{n}]
        res = an.score_worker({str(path)!r}, df)
        state = PartialState()
        if state.is_main_process:
            np.save({str(tmp_path/'s2.npy')!r}, res["scores"])
            print("world", res["world_size"])
        state.wait_for_everyone(); state.destroy_process_group()     # a clean exit for gloo
    """))
    p = torchrun(script, env=CPU)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "world 2" in p.stdout
    df = an.generate_traffic(n, seed=5).df.iloc[:n]
    s1 = an.score_split(an.AnomalyPipeline.load(path), df)           # one process: everything
    s2 = np.load(tmp_path/"s2.npy")
    assert len(s1) == len(df) == n and np.array_equal(s1, s2)


def _seeded_scorer():
    "The small test matrix, an untrained autoencoder seeded with 0, and its error statistics."
    sp, pre = _small()
    X = pre.transform(sp.test)
    torch.manual_seed(0)
    ae = an.Autoencoder(X.shape[1]).eval()
    return X, ae, an.error_stats(ae, X)


def test_scores_slices_equal_the_dataloader_path():
    "The profiler's fix: scoring slices gives the scores of the earlier DataLoader + predict path, bit for bit."
    X, ae, st = _seeded_scorer()
    mu, inv = torch.tensor(st["mean"]), 1 / torch.tensor(st["std"])
    old = predict(ae, array_loader(X, batch_size=256),
                  forward_fn=lambda m, b: (None, (((m(b[0]) - b[0]).pow_(2) - mu) * inv).mean(-1), None))[0]
    assert np.array_equal(an.standardized_errors(ae, X, st, batch_size=256), old)
    assert an.standardized_errors(ae, X[:0], st).shape == (0,)


# ---------------------------------------------------------------- find_executable_batch_size
class _Fails(an.Autoencoder):
    "An autoencoder whose forward raises PyTorch's CPU out-of-memory message above `limit` rows."
    def __init__(self, n, limit):
        super().__init__(n); self.limit = limit
    def forward(self, x):
        if x.shape[0] > self.limit:
            raise RuntimeError(f"[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                               f"memory: you tried to allocate {x.shape[0] * 4096} bytes. Error code 12 "
                               f"(Cannot allocate memory)")
        return super().forward(x)


def test_max_batch_halves_on_recognised_oom():
    X = np.random.default_rng(0).standard_normal((600, 20)).astype(np.float32)
    m, h, tried = an.train_autoencoder_max_batch(X, model=_Fails(20, 100), starting_batch_size=1024, epochs=1)
    assert tried == [1024, 512, 256, 128, 64] and len(h) == 1


def test_max_batch_other_errors_are_not_retried():
    X = np.random.default_rng(0).standard_normal((64, 20)).astype(np.float32)
    with pytest.raises(RuntimeError, match="mat1 and mat2"):          # a shape error is raised at once
        an.train_autoencoder_max_batch(X, model=an.Autoencoder(21), starting_batch_size=64, epochs=1)


def test_batch_size_that_never_fits_one_clear_error():
    X = np.random.default_rng(0).standard_normal((600, 20)).astype(np.float32)
    with pytest.raises(an.BatchSizeError) as e:
        an.train_autoencoder_max_batch(X, model=_Fails(20, 10), starting_batch_size=256, min_batch_size=32, epochs=1)
    msg = str(e.value)
    assert "\n" not in msg and "min_batch_size=32" in msg and "256, 128, 64, 32" in msg
    assert "DefaultCPUAllocator: can't allocate memory" in msg and "enforce fail" not in msg


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux")
def test_real_cpu_allocation_failure_halves(tmp_path):
    "A real allocation failure (address space capped): PyTorch's allocator raises and the batch size halves."
    code = textwrap.dedent("""
        import numpy as np, json
        from accel_course import anomaly as an
        from accel_course.training import torch_threads
        X = np.random.default_rng(0).standard_normal((131072, 64)).astype(np.float32)
        with torch_threads(1):
            an.train_autoencoder(X[:512], batch_size=256, epochs=1, max_steps_per_epoch=1)
            with an.cpu_memory_limit(300):
                _, _, tried = an.train_autoencoder_max_batch(X, starting_batch_size=131072, epochs=1,
                                                             max_steps_per_epoch=1)
        print(json.dumps(tried))
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    tried = json.loads(p.stdout.strip().splitlines()[-1])
    assert len(tried) >= 2 and all(b == a // 2 for a, b in zip(tried, tried[1:])), tried


# ---------------------------------------------------------------- profiler
def test_profiled_epoch_writes_a_trace(tmp_path):
    from accelerate.utils import ProfileKwargs
    sp, pre = _small()
    X = pre.transform(sp.train_normal)
    acc = make_accelerator("no")
    with torch_threads(1), acc.profile(ProfileKwargs(activities=["cpu"], output_trace_dir=str(tmp_path))) as prof:
        an.train_autoencoder(X, epochs=1, batch_size=128, accelerator=acc)
    names = {e.key for e in prof.key_averages()}
    assert {"aten::addmm", "Optimizer.step#AdamW.step"} <= names
    trace = list(tmp_path.glob("*.json"))
    assert len(trace) == 1 and json.loads(trace[0].read_text())["traceEvents"]


def test_profile_callback_one_epoch(tmp_path):
    "The course's `Profile` callback through `train_autoencoder(callbacks=...)`: one epoch's batches, a trace written."
    from accel_course.training import Profile
    sp, pre = _small()
    X = pre.transform(sp.train_normal)
    cb = Profile(steps=-(-len(X) // 128), trace_dir=tmp_path/"trace")
    with torch_threads(1):
        an.train_autoencoder(X, epochs=1, batch_size=128, callbacks=[cb])
    steps = next(e for e in cb.prof.key_averages() if e.key == "Optimizer.step#AdamW.step").count
    assert steps == -(-len(X) // 128) and len(list((tmp_path/"trace").glob("*.json"))) == 1


def test_profile_call_scoring(tmp_path):
    "`profile_call` profiles one scoring call (the chapter's before/after): the result, the operators, a trace."
    X, ae, st = _seeded_scorer()
    s, prof = an.profile_call(an.standardized_errors, ae, X, st, trace_dir=tmp_path)
    assert np.array_equal(s, an.standardized_errors(ae, X, st))
    names = {e.key for e in prof.key_averages()}
    assert "aten::addmm" in names and not any("DataLoader" in k for k in names)   # slices: no DataLoader any more
    assert json.loads((tmp_path/"trace.json").read_text())["traceEvents"]


# ---------------------------------------------------------------- compilation
@pytest.mark.parametrize("backend,match", [("tensorrt", "needs the package 'torch_tensorrt'"),
                                           ("tvm", "needs the package 'tvm'"),
                                           ("turbo", "is not a torch.compile backend")])
def test_compile_backend_not_installed_one_line(backend, match):
    X = np.zeros((32, 8), np.float32)
    with pytest.raises(ValueError, match=match) as e:
        an.train_autoencoder(X, epochs=1, dynamo_backend=backend)
    assert "\n" not in str(e.value) and f"dynamo_backend={backend!r}" in str(e.value)


def test_compiled_training_matches_eager():
    "dynamo_backend through the Accelerator: the compiled model trains to the eager losses (aot_eager: no C++ needed)."
    sp, pre = _small()
    X = pre.transform(sp.train_normal)
    with torch_threads(1):
        _, he = an.train_autoencoder(X, epochs=2, batch_size=128, seed=0)
        mc, hc = an.train_autoencoder(X, epochs=2, batch_size=128, seed=0, dynamo_backend="aot_eager")
    assert np.allclose(he["train_loss"], hc["train_loss"], rtol=1e-4)
    assert not hasattr(mc, "_orig_mod")                               # the returned model is the plain module
    with pytest.raises(ValueError, match="not both"):
        an.train_autoencoder(X, epochs=1, dynamo_backend="eager", accelerator=make_accelerator("no"))

"""`launch`: a real 2-process gloo job on CPU, precision in the workers, early CUDA error, leftover state, ports,
and the same function under `accelerate launch`."""
import json, os, socket, subprocess, sys, textwrap
from unittest import mock
import pytest, torch
from accel_course.launch import launch, toy_job, LaunchError, free_port, CUDA_INIT_MSG
from _real import torchrun

# every real launch here asks for CPU workers (use_cpu=True), so these tests run the same on a GPU machine;
# what launch decides on GPU machines is proven with a mocked CUDA in test_launch_plan.py

@pytest.fixture(scope="module")
def two_proc():
    # 517 samples -> 104 validation samples: with batch 32 over 2 ranks the last batch is padded
    return launch(toy_job, 517, 2, 32, num_processes=2, use_cpu=True, mixed_precision="no", verbose=False)

def test_world_size_is_two_inside_workers(two_proc):
    assert two_proc["world_size"] == 2
    assert two_proc["distributed_type"].endswith("MULTI_CPU")

def test_identical_weights_on_both_ranks(two_proc):
    d = two_proc["digests"]
    assert len(d) == 2 and d[0] == d[1]

def test_gather_for_metrics_returns_exactly_n(two_proc):
    assert two_proc["n_val"] == 517 - int(0.8 * 517)
    assert two_proc["n_val_gathered"] == two_proc["n_val"]

def test_bf16_launch_runs_bf16_in_workers():
    r = launch(toy_job, 256, 1, num_processes=2, use_cpu=True, mixed_precision="bf16", verbose=False)
    assert r["mixed_precision"] == "bf16"
    assert r["compute_dtype"] == "torch.bfloat16"

def test_fp32_launch_runs_fp32_in_workers(two_proc):
    assert two_proc["compute_dtype"] == "torch.float32"

def test_cuda_initialised_parent_gets_clear_error_before_fork():
    with mock.patch("torch.cuda.is_initialized", return_value=True), \
         mock.patch("accel_course.launch.gpu_count", return_value=2), \
         mock.patch("accelerate.notebook_launcher", side_effect=AssertionError("must not fork")):
        with pytest.raises(LaunchError) as e:
            launch(toy_job, num_processes=2)
    assert "Restart the kernel" in str(e.value) and "CUDA is already initialised" in str(e.value)

def test_leftover_accelerator_state_and_busy_default_port():
    from accelerate import Accelerator
    Accelerator(cpu=True, mixed_precision="bf16")   # what an earlier notebook cell may have left behind
    with socket.socket() as s:
        try: s.bind(("127.0.0.1", 29500)); s.listen()   # someone else holds accelerate's default port
        except OSError: pass
        r = launch(toy_job, 128, 1, num_processes=2, use_cpu=True, verbose=False)
    assert r["world_size"] == 2

def test_single_process_runs_in_process_with_precision():
    r = launch(toy_job, 128, 1, num_processes=1, use_cpu=True, mixed_precision="bf16", verbose=False)
    assert r["world_size"] == 1 and r["compute_dtype"] == "torch.bfloat16"

def test_bad_arguments():
    with pytest.raises(ValueError, match="mixed_precision"): launch(toy_job, mixed_precision="fp8x")
    with pytest.raises(ValueError, match="num_processes"): launch(toy_job, num_processes=0)

def test_free_ports_differ():
    assert len({free_port() for _ in range(5)}) >= 2

def test_same_function_under_accelerate_launch(tmp_path):
    script = tmp_path/"train.py"
    script.write_text(textwrap.dedent(f"""
        import json
        from accelerate import PartialState
        from accel_course.launch import toy_job
        r = toy_job(256, 1)
        if PartialState().is_main_process:
            open({str(tmp_path/'r.json')!r}, 'w').write(json.dumps(r))
        PartialState().destroy_process_group()   # without it gloo threads can SIGABRT the process at exit
    """))
    # `accelerate launch --cpu --num_processes 2` starts a single process; torchrun is the multi-CPU launcher
    p = torchrun(script, env={"ACCEL_COURSE_FAST": "1", "ACCELERATE_USE_CPU": "yes", "ACCELERATE_MIXED_PRECISION": "bf16"})
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads((tmp_path/"r.json").read_text())
    assert r["world_size"] == 2 and r["compute_dtype"] == "torch.bfloat16" and len(set(r["digests"])) == 1

def test_no_deadlock_after_parent_used_openmp(tmp_path):
    # libgomp's thread pool is not fork-safe: a parent that ran a multi-threaded op used to hang the forked workers
    script = tmp_path/"p.py"
    script.write_text(textwrap.dedent("""
        import torch
        from accel_course.launch import launch, toy_job
        torch.set_num_threads(2); a = torch.randn(512, 512); a @ a
        print("WORLD", launch(toy_job, 256, 1, num_processes=2, use_cpu=True, verbose=False)["world_size"])
    """))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    assert p.returncode == 0 and "WORLD 2" in p.stdout, p.stderr[-2000:]

def test_tracked_fits_keep_the_process_group_and_cli_ends_it(tmp_path):
    # fit(log_with=...) used to call accelerator.end_training(), which destroys the process group: a second fit or any
    # collective after it failed under a launcher. The CLI's end_distributed then tears the group down cleanly.
    script = tmp_path/"two_fits.py"
    script.write_text(textwrap.dedent(f"""
        import json, torch
        from torch import nn
        from torch.utils.data import DataLoader, TensorDataset
        from accelerate.utils import gather_object
        import torch.distributed as dist
        from accel_course.training import fit, toy_regression, make_mlp, Trackers
        from accel_course.cli import init_distributed, end_distributed
        init_distributed()
        X, y = toy_regression(256, seed=0)
        losses = []
        for k in range(2):   # two tracked fits in one launched process, like a project comparing models
            tdl = DataLoader(TensorDataset(X[:200], y[:200]), batch_size=32)
            vdl = DataLoader(TensorDataset(X[200:], y[200:]), batch_size=32)
            torch.manual_seed(k); model = make_mlp()
            h = fit(model, torch.optim.AdamW(model.parameters(), 3e-3), tdl, vdl, loss_fn=nn.MSELoss(), epochs=1,
                    callbacks=[Trackers("tensorboard", {str(tmp_path)!r} + f"/fit{{k}}")], verbose=False)
            losses.append(h.final["val_loss"])
        ranks = gather_object([dist.get_rank()])
        alive = dist.is_initialized()
        end_distributed()
        import os
        if os.environ["RANK"] == "0":
            open({str(tmp_path/'r.json')!r}, 'w').write(json.dumps(dict(ranks=ranks, alive=alive, losses=losses,
                                                                       after=dist.is_initialized())))
    """))
    p = torchrun(script, env={"ACCEL_COURSE_FAST": "1", "ACCELERATE_USE_CPU": "yes"})
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads((tmp_path/"r.json").read_text())
    assert r["ranks"] == [0, 1] and r["alive"] and not r["after"] and len(r["losses"]) == 2
    assert list((tmp_path/"fit0").rglob("events.out.tfevents*")) and list((tmp_path/"fit1").rglob("events.out.tfevents*"))

"""What `launch` decides on machines we do not have: a mocked CUDA (0, 1 or 4 GPUs, used or not) and a mocked
`notebook_launcher`, so nothing forks. Each test asserts what would have been launched: how many processes, CPU or
GPU workers (ACCELERATE_USE_CPU), the precision, the rendezvous port -- and that the parent never asks CUDA itself."""
import os
import pytest, torch
import accelerate
import accel_course.launch as L
from accel_course.launch import plan_launch, launch, gpu_count, LaunchError, DEFAULT_PORT, NVML_CHECK

# ---------------------------------------------------------------- the rule itself (pure function)

@pytest.mark.parametrize("asked,n_gpus,cuda_init,use_cpu,expected", [
    ("auto", 0, False, None, (2, True)),     # laptop: 2 CPU processes
    ("auto", 1, False, None, (2, True)),     # 1 GPU: a multi-process demo needs 2+ devices
    ("auto", 4, False, None, (4, False)),    # one process per GPU
    ("auto", 4, True, None, (2, True)),      # CUDA used in the kernel: forked workers cannot use it
    ("auto", 4, False, True, (2, True)),     # CPU forced
    (None, 0, False, None, (1, True)),
    (None, 4, False, None, (4, False)),      # None: all GPUs
    (None, 4, False, True, (1, True)),
    (2, 4, False, None, (2, False)),
    (3, 0, False, None, (3, True)),
    (2, 1, True, True, (2, True)),           # CPU workers do not care what the parent did with CUDA
    (1, 1, True, None, (1, False)),          # one process runs in the kernel: no fork, no guard
])
def test_plan(asked, n_gpus, cuda_init, use_cpu, expected):
    n, cpu, why = plan_launch(asked, use_cpu=use_cpu, n_gpus=n_gpus, cuda_initialized=cuda_init)
    assert (n, cpu) == expected and isinstance(why, str) and why

@pytest.mark.parametrize("kw,match", [
    (dict(num_processes=2, n_gpus=1), "only 1 GPU"),                    # explicit num_processes too large
    (dict(num_processes=8, n_gpus=4), "only 4 GPU"),
    (dict(num_processes=2, n_gpus=4, cuda_initialized=True), "CUDA is already initialised"),
    (dict(num_processes="auto", n_gpus=1, use_cpu=False), "1 GPU"),   # GPU workers demanded, none to spare
    (dict(num_processes="auto", n_gpus=4, cuda_initialized=True, use_cpu=False), "CUDA is already initialised"),
    (dict(num_processes=1, n_gpus=4, num_nodes=2), "num_processes >= 2 per node"),
])
def test_plan_refuses(kw, match):
    with pytest.raises(LaunchError, match=match): plan_launch(**{"cuda_initialized": False, **kw})

@pytest.mark.parametrize("bad", [0, -1, "two", True, 1.5])
def test_plan_rejects_bad_num_processes(bad):
    with pytest.raises(ValueError, match="num_processes"): plan_launch(bad, n_gpus=0, cuda_initialized=False)

# ---------------------------------------------------------------- a mocked machine

class Machine:
    "A fake CUDA with `n_gpus` devices: records the NVML switch at each query, fails on any query that would fork-poison."
    def __init__(self, mp, n_gpus, cuda_init=False):
        self.n, self.nvml_seen, self.launches, self.in_process = n_gpus, [], [], []
        def counted(v):
            def f(*a, **k):
                self.nvml_seen.append(os.environ.get(NVML_CHECK)); return v
            return f
        mp.setattr(torch.cuda, "is_available", counted(n_gpus > 0))
        mp.setattr(torch.cuda, "device_count", counted(n_gpus))
        mp.setattr(torch.cuda, "is_initialized", lambda: cuda_init)
        def poison(name):
            def f(*a, **k): raise AssertionError(f"launch() called torch.cuda.{name} in the parent: that creates a CUDA context")
            return f
        for name in ("init", "_lazy_init", "current_device", "set_device", "get_device_name", "get_device_properties",
                     "synchronize", "mem_get_info", "get_device_capability"):
            mp.setattr(torch.cuda, name, poison(name))
        def fake_launcher(function, args=(), num_processes=None, mixed_precision="no", use_port="29500",
                          master_addr="127.0.0.1", node_rank=0, num_nodes=1, **kw):
            self.launches.append(dict(function=function, args=args, num_processes=num_processes, use_port=use_port,
                                      master_addr=master_addr, node_rank=node_rank, num_nodes=num_nodes,
                                      use_cpu_env=os.environ.get("ACCELERATE_USE_CPU"),
                                      precision_env=os.environ.get("ACCELERATE_MIXED_PRECISION"),
                                      omp=os.environ.get("OMP_NUM_THREADS")))
        mp.setattr(accelerate, "notebook_launcher", fake_launcher)
        mp.delenv(NVML_CHECK, raising=False)
        mp.delenv("ACCELERATE_USE_CPU", raising=False)
    def job(self, *args):
        "A function run in the kernel (world of 1): records the environment it saw."
        self.in_process.append(dict(args=args, use_cpu_env=os.environ.get("ACCELERATE_USE_CPU"),
                                    precision_env=os.environ.get("ACCELERATE_MIXED_PRECISION")))
        return "ran in process"

@pytest.fixture
def machine(monkeypatch):
    monkeypatch.setattr(L, "free_port", lambda host="127.0.0.1": 41234)   # a recognisable 'free' port
    return lambda n_gpus, cuda_init=False: Machine(monkeypatch, n_gpus, cuda_init)

def test_gpu_count_asks_nvml_and_restores_the_environment(machine):
    m = machine(4)
    assert gpu_count() == 4
    assert m.nvml_seen and all(v == "1" for v in m.nvml_seen), m.nvml_seen
    assert NVML_CHECK not in os.environ          # the switch is on only while counting

def test_gpu_count_real_torch_without_gpu():
    if torch.cuda.is_available(): pytest.skip("this machine has a GPU")
    assert gpu_count() == 0

@pytest.mark.parametrize("n_gpus,cuda_init,n,cpu", [(0, False, 2, True), (1, False, 2, True), (4, False, 4, False),
                                                    (4, True, 2, True)])
def test_auto_launch(machine, n_gpus, cuda_init, n, cpu):
    m = machine(n_gpus, cuda_init)
    assert launch(m.job, 7, num_processes="auto", mixed_precision="bf16", verbose=False) is None   # nothing ran
    assert len(m.launches) == 1 and not m.in_process
    got = m.launches[0]
    assert got["num_processes"] == n and got["args"] == (7,)
    assert got["use_cpu_env"] == ("yes" if cpu else None)
    assert got["precision_env"] == "bf16"
    assert got["function"].world_size == n and got["function"].use_cpu == cpu
    if cpu: assert got["omp"] == "1"          # one thread per CPU worker
    assert got["use_port"] == "41234" and got["num_nodes"] == 1    # single node: a free port
    if n_gpus: assert all(v == "1" for v in m.nvml_seen), "GPUs were counted without the NVML switch"
    assert "ACCELERATE_USE_CPU" not in os.environ and os.environ.get("ACCELERATE_MIXED_PRECISION") != "bf16"

def test_forced_cpu_on_a_gpu_machine(machine):
    m = machine(4)
    launch(m.job, num_processes=3, use_cpu=True, verbose=False)
    got = m.launches[0]
    assert got["num_processes"] == 3 and got["use_cpu_env"] == "yes" and got["function"].use_cpu

@pytest.mark.parametrize("n_gpus,cuda_init,kw,match", [
    (1, False, dict(num_processes=2), "only 1 GPU"),
    (4, False, dict(num_processes=5), "only 4 GPU"),
    (4, True, dict(num_processes=2), "CUDA is already initialised"),
    (4, True, dict(num_processes="auto", use_cpu=False), "CUDA is already initialised"),
])
def test_refused_before_anything_forks(machine, n_gpus, cuda_init, kw, match):
    m = machine(n_gpus, cuda_init)
    with pytest.raises(LaunchError, match=match): launch(m.job, **kw, verbose=False)
    assert not m.launches and not m.in_process

def test_one_process_runs_in_the_kernel_even_after_cuda_was_used(machine):
    m = machine(1, cuda_init=True)
    assert launch(m.job, 3, num_processes=1, mixed_precision="bf16", verbose=False) == "ran in process"
    assert not m.launches
    assert m.in_process == [dict(args=(3,), use_cpu_env=None, precision_env="bf16")]

def test_multi_node_uses_the_same_default_port_on_every_node(machine):
    seen = []
    for rank in (0, 1):
        m = machine(4)
        launch(m.job, num_processes=4, num_nodes=2, node_rank=rank, master_addr="10.0.0.1", verbose=False)
        seen.append(m.launches[0])
    assert [s["use_port"] for s in seen] == [str(DEFAULT_PORT)] * 2      # not each node's own free port
    assert [s["node_rank"] for s in seen] == [0, 1]
    assert all(s["num_nodes"] == 2 and s["master_addr"] == "10.0.0.1" and s["function"].world_size == 8 for s in seen)

def test_multi_node_explicit_port_and_one_process_per_node(machine):
    m = machine(4)
    launch(m.job, num_processes=2, num_nodes=3, port=23456, master_addr="10.0.0.1", verbose=False)
    assert m.launches[0]["use_port"] == "23456" and m.launches[0]["function"].world_size == 6
    with pytest.raises(LaunchError, match="per node"): launch(m.job, num_processes=1, num_nodes=2, verbose=False)

def test_the_printed_line_says_what_runs(machine, capsys):
    m = machine(1)
    launch(m.job, num_processes="auto", mixed_precision="bf16")
    out = capsys.readouterr().out
    assert "2 processes on CPU (gloo)" in out and "mixed_precision=bf16" in out and "1 GPU" in out

"""The `accel-course` CLI as a user runs it: help at every level, info, one-line errors, python -m."""
import json
import torch
import os, subprocess, sys
from pathlib import Path
import pytest

def cli(*args, timeout=300, env=None):
    return subprocess.run(["accel-course", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})

def test_help_at_every_level():
    for args in [("--help",), ("run", "--help"), ("info", "--help"), ("serve", "--help"), ("list", "--help")]:
        p = cli(*args)
        assert p.returncode == 0, (args, p.stderr)
        assert "usage: accel-course" in p.stdout

def test_version():
    p = cli("--version"); assert p.returncode == 0 and p.stdout.startswith("accel_course ")

def test_info_reports_versions_devices_precisions_threads_config():
    p = cli("info", "--json"); assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert {"torch", "accelerate", "transformers"} <= set(d["versions"])
    assert d["devices"][0]["type"] == "cpu"
    # what `info` reports must be what Accelerate really runs: probe a Linear under mixed_precision="bf16" on CPU
    from accel_course.training import make_accelerator, probe_precision
    assert d["precisions"]["cpu"]["bf16"] == (probe_precision(make_accelerator("bf16", cpu=True)) == torch.bfloat16)
    assert d["precisions"]["cpu"]["fp16"] is False
    assert d["threads"]["torch"] >= 1 and "accelerate_config" in d
    p = cli("info"); assert p.returncode == 0 and "precision: cpu" in p.stdout

def test_list_shows_the_four_projects():
    p = cli("list"); assert p.returncode == 0
    for name in ("housing", "maintenance", "sentiment", "anomaly"): assert name in p.stdout

@pytest.mark.parametrize("args,needle", [
    (("run", "nosuchproject"), "invalid choice"),
    (("run", "housing", "--no-such-option"), "unrecognized arguments"),
    (("run", "housing", "--source", "/no/such/data.csv", "--fast"), "no such file or folder"),
    (("run", "housing", "--epochs", "many"), "argument --epochs: expected a positive integer, got 'many'"),
    (("serve", "--model", "/no/such/model"), "no such model folder"),
    (("frobnicate",), "invalid choice"),
])
def test_errors_are_one_clear_line(args, needle):
    p = cli(*args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert needle in lines[0] and "Traceback" not in p.stderr

def test_python_dash_m_entry_point():
    p = subprocess.run([sys.executable, "-m", "accel_course.cli", "list"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "housing" in p.stdout

def test_run_under_torchrun_two_cpu_processes(tmp_path):
    # the documented multi-CPU command: both ranks train, rank 0 writes and prints once, the group is torn down
    # (a launched process that exits with a live gloo group can be SIGABRTed at shutdown and fail the job)
    from _real import torchrun
    out = tmp_path/"h2"
    env = {"ACCELERATE_USE_CPU": "yes", "ACCEL_COURSE_DATA": str(tmp_path/"no_data"), "OMP_NUM_THREADS": "1"}
    p = torchrun("-m", "accel_course.cli", "run", "housing", "--source", "sample", "--fast", "--out", out,
                 env=env, timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("wrote ") == 1 and p.stdout.count("housing: windsor") == 1, p.stdout
    m = json.loads((out/"metrics.json").read_text())
    assert m["project"] == "housing" and m["n_train"] > 0 and m["best"] in m["models"]

# a launched run is all-or-nothing too: every rank writes into the same staging folder, the main process swaps it in
# only when every rank succeeded, and a rank that fails neither hangs the others nor leaves a half-written --out
JOB = '''
import os, sys
from pathlib import Path
from accel_course.core import register_project
from accel_course.cli import main

@register_project("ranks")
def run(ctx):
    rank = os.environ["RANK"]
    (Path(ctx.out)/f"rank{rank}.txt").write_text(str(ctx.out))     # which folder this rank was given
    if rank == os.environ.get("FAIL_RANK"): raise ValueError(f"rank {rank} failed on purpose")
    return dict(dataset="ranks", source="sample", n_train=2, n_test=1, models={"m": {"rmse": 1.0}}, best="m")

sys.exit(main(sys.argv[1:]))
'''

def test_torchrun_ranks_share_one_staging_folder_and_a_failing_rank_changes_nothing(tmp_path):
    from _real import torchrun
    (tmp_path/"job.py").write_text(JOB)
    out = tmp_path/"o"
    env = {"ACCELERATE_USE_CPU": "yes", "OMP_NUM_THREADS": "1"}
    p = torchrun(tmp_path/"job.py", "run", "ranks", "--out", out, env=env, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    seen = {(out/f"rank{r}.txt").read_text() for r in (0, 1)}
    assert len(seen) == 1 and Path(seen.pop()).parent == tmp_path          # one staging folder beside --out, both ranks
    assert json.loads((out/".accel-course-run.json").read_text())["world_size"] == 2
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for fail in ("1", "0"):      # a worker fails while the main process succeeds, and the other way round
        p = torchrun(tmp_path/"job.py", "run", "ranks", "--out", out, env={**env, "FAIL_RANK": fail}, timeout=300, cwd=tmp_path)
        assert p.returncode != 0 and f"rank {fail} failed on purpose" in p.stderr, p.stderr[-3000:]
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before, fail
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.")] == [], fail

"""The `accel-course` CLI as a user runs it: help at every level, info, one-line errors, python -m."""
import json, os, subprocess, sys
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
    assert d["precisions"]["cpu"]["bf16"] in (True, False) and d["precisions"]["cpu"]["fp16"] is False
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

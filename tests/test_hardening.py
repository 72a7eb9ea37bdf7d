"""Regression tests for what an adversarial probe broke: NaN validation, resume without checkpoints/last,
file permissions under the umask, CLI option ranges, the pip user's notebooks and configs, launcher mismatch."""
import json, os, shutil, stat, subprocess, sys
from pathlib import Path
import pytest, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from accel_course.training import fit, toy_regression, make_mlp, NonFiniteLossError

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
        fit(m, torch.optim.SGD(m.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=3, patience=1,
            output_dir=tmp_path, progress=False, verbose=False, cpu=True)
    assert not (tmp_path/"checkpoints"/"best").exists()    # nothing was saved as "best"

def test_nan_monitored_metric_raises():
    tdl, vdl = _dls()
    m = make_mlp()
    with pytest.raises(NonFiniteLossError, match=r"score=nan at epoch 1"):
        fit(m, torch.optim.SGD(m.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=2,
            metrics={"score": lambda p, t: float("nan")}, monitor="score", mode="max", progress=False, verbose=False, cpu=True)

def test_nan_unmonitored_metric_is_only_reported():
    tdl, vdl = _dls()
    m = make_mlp()
    h = fit(m, torch.optim.SGD(m.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=1,
            metrics={"auc": lambda p, t: float("nan")}, progress=False, verbose=False, cpu=True)
    assert h.final["auc"] != h.final["auc"] and len(h) == 1

# 2. killed before the first complete checkpoints/last: resume falls back to checkpoints/best
def test_resume_falls_back_to_best_when_last_is_missing(tmp_path, capsys):
    tdl, vdl = _dls()
    m = make_mlp()
    fit(m, torch.optim.SGD(m.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=2, output_dir=tmp_path,
        progress=False, verbose=False, cpu=True)
    ck = tmp_path/"checkpoints"
    best_epoch = json.loads((ck/"best"/"fit_state.json").read_text())["epoch"]
    shutil.rmtree(ck/"last"); (ck/".last.tmp").mkdir()        # killed while writing the first `last`
    capsys.readouterr()
    m2 = make_mlp()
    h = fit(m2, torch.optim.SGD(m2.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=3, output_dir=tmp_path,
            resume_from=tmp_path, progress=False, verbose=True, cpu=True)
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
    fit(m, torch.optim.SGD(m.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=1, output_dir=tmp_path,
        progress=False, verbose=False, cpu=True)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in files if _mode(p) != 0o644} == {}
    assert {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in tmp_path.rglob("*") if p.is_dir() and _mode(p) != 0o755} == {}

# 4. numeric and name options are range-checked by argparse, and the error names the option
from accel_course.cli import main, build_parser

@pytest.mark.parametrize("args, option", [
    (["run", "anomaly", "--epochs", "-1"], "--epochs"), (["run", "anomaly", "--epochs", "0"], "--epochs"),
    (["run", "maintenance", "--k", "-1"], "--k"), (["run", "maintenance", "--window", "0"], "--window"),
    (["run", "anomaly", "--rows", "0"], "--rows"), (["run", "sentiment", "--max-length", "0"], "--max-length"),
    (["run", "sentiment", "--batch-size", "0"], "--batch-size"), (["run", "cmapss", "--window", "-3"], "--window"),
    (["run", "anomaly", "--seed", "-5"], "--seed"), (["run", "anomaly", "--seed", str(2**70)], "--seed"),
    (["run", "housing", "--models", ","], "--models"), (["run", "housing", "--models", "ridge,,hgb"], "--models"),
    (["run", "housing", "--folds", "1"], "--folds"), (["run", "anomaly", "--source", ""], "--source"),
    (["run", "anomaly", "--out", ""], "--out"), (["run", "all", "--epochs", "0"], "--epochs"),
    (["serve", "--model", "m", "--port", "0"], "--port"),
])
def test_bad_option_values_are_rejected_naming_the_option(args, option, capsys):
    with pytest.raises(SystemExit) as e: main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"argument {option}:" in err and len(err.strip().splitlines()) == 1, err

def test_good_option_values_still_parse():
    argv = ["run", "maintenance", "--k", "3", "--window", "5", "--seed", str(2**32 - 1), "--epochs", "2"]
    a = build_parser(argv).parse_args(argv)
    assert (a.k, a.window, a.seed, a.epochs) == (3, 5, 2**32 - 1, 2)
    argv = ["run", "housing", "--models", " ridge, hgb"]
    assert build_parser(argv).parse_args(argv).models == "ridge,hgb"

def test_out_that_cannot_be_a_folder_names_out(tmp_path, capsys):
    (tmp_path/"afile").write_text("x")
    assert main(["run", "anomaly", "--fast", "--out", str(tmp_path/"afile"/"sub")]) == 2
    err = capsys.readouterr().err
    assert f"--out {tmp_path/'afile'/'sub'}: cannot create this folder" in err

# 5. the pip user's path: the wheel carries the notebooks and accelerate configs; `notebooks` and `config` copy them out
ROOT = Path(__file__).resolve().parents[1]

def test_notebooks_and_config_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["notebooks", "course"]) == 0
    got = sorted(p.name for p in (tmp_path/"course").iterdir())
    assert got == sorted([p.name for p in (ROOT/"nbs").glob("*.ipynb")] + ["styles.css"])
    assert (tmp_path/"course"/"01_training.ipynb").read_bytes() == (ROOT/"nbs"/"01_training.ipynb").read_bytes()
    capsys.readouterr()
    assert main(["notebooks", "course"]) == 2 and "use --force" in capsys.readouterr().err
    assert main(["notebooks", "course", "--force"]) == 0
    assert main(["config", "fsdp"]) == 0 and (tmp_path/"fsdp.yaml").read_text() == (ROOT/"accelerate_configs"/"fsdp.yaml").read_text()
    capsys.readouterr()
    assert main(["config", "nope"]) == 2 and "multi_gpu" in capsys.readouterr().err
    assert main(["config", "multi_gpu", "--out", "cfg/mg.yaml"]) == 0 and (tmp_path/"cfg"/"mg.yaml").exists()

def test_wheel_carries_the_course_and_works_from_an_installed_location(tmp_path):
    import zipfile
    r = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path/"whl"), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    whl, = (tmp_path/"whl").glob("*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    want = {f"accel_course/nbs/{p.name}" for p in (ROOT/"nbs").glob("*.ipynb")} | {"accel_course/nbs/styles.css"}
    want |= {f"accel_course/accelerate_configs/{p.name}" for p in (ROOT/"accelerate_configs").glob("*.yaml")}
    assert len(want) > 12 and want <= names
    site = tmp_path/"site"; zipfile.ZipFile(whl).extractall(site)     # the installed layout, without a venv
    work = tmp_path/"work"; work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = ("import accel_course.cli as c, sys; assert c.__file__.startswith(sys.argv[1]), c.__file__; "
            "print(c.course_folder('nbs')); sys.exit(c.main(['notebooks', 'nb']) or c.main(['config', 'multi_gpu']))")
    r = subprocess.run([sys.executable, "-c", code, str(site)], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith(str(site/"accel_course"/"nbs"))
    assert (work/"nb"/"03_cli.ipynb").exists() and (work/"multi_gpu.yaml").exists()

# 6. `accelerate launch --num_processes 2` on a CPU machine runs ONE process: say so, and say what the run uses
def test_accelerate_launch_mismatch_is_reported(tmp_path):
    r = subprocess.run(["accelerate", "launch", "--num_processes", "2", "--mixed_precision", "bf16", "-m", "accel_course.cli",
                        "run", "anomaly", "--fast", "--no-lstm", "--no-ablation", "--out", str(tmp_path/"a")],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "accel-course: 1 process on CPU, mixed precision bf16" in r.stdout
    assert "warning: the launcher asked for 2 processes but this run has 1" in r.stdout and "torchrun" in r.stdout

def test_plain_run_line_has_no_warning(monkeypatch):
    from accel_course.cli import _launch_line
    import argparse
    for k in ("WORLD_SIZE", "ACCELERATE_MIXED_PRECISION", "MASTER_ADDR"): monkeypatch.delenv(k, raising=False)
    line = _launch_line(argparse.Namespace(mixed_precision=None))
    assert line.startswith("accel-course: 1 process on ") and line.endswith("mixed precision no") and "\n" not in line
    monkeypatch.setenv("WORLD_SIZE", "2"); monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    assert "2 processes" in _launch_line(argparse.Namespace(mixed_precision=None)) and "warning" not in _launch_line(argparse.Namespace(mixed_precision=None))

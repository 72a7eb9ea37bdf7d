"""What `accel-course` does with a user's command line: options range-checked naming the option, `--out` folders that
hold one run (staged, swapped in only on success, never half-written, under the umask), the pip user's `notebooks`
and `config` commands, the launcher-mismatch warning, and `serve`'s options."""
import json, os, re, shutil, stat, subprocess, sys
from pathlib import Path
import pytest, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from accel_course.training import fit, toy_regression, make_mlp, make_accelerator, Checkpoints

def _dls():
    X, y = toy_regression(192, seed=0)
    return (DataLoader(TensorDataset(X[:128], y[:128]), batch_size=32),
            DataLoader(TensorDataset(X[128:], y[128:]), batch_size=32))

def _mode(p): return stat.S_IMODE(os.stat(p).st_mode)

@pytest.fixture
def umask022():
    old = os.umask(0o022)
    try: yield
    finally: os.umask(old)

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
    named = re.search(rf"argument (\S+/)?{option}(/\S+)?: ", err)      # an option may have aliases: --max-rows/--rows
    assert e.value.code == 2 and named and len(err.strip().splitlines()) == 1, err

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

# 7. a run folder holds ONE run: `run --out DIR` stages beside DIR and swaps it in only when the run succeeded
from accel_course.core import register_project, PROJECTS

def _snapshot(d):
    "Every file under `d` (hidden ones too) with its bytes and mode: to check that a folder was left exactly as it was."
    return {str(p.relative_to(d)): (p.read_bytes(), _mode(p)) for p in sorted(Path(d).rglob("*")) if p.is_file()}

def _leftovers(parent, name):
    return sorted(p.name for p in Path(parent).iterdir() if p.name.startswith(f".{name}."))

@pytest.fixture
def fake_projects():
    "Two tiny projects that write different files, and fail (ValueError, or Ctrl-C) when told to."
    def make(name, fig):
        def run(ctx):
            (Path(ctx.out)/f"{fig}.png").write_bytes(fig.encode())
            if ctx.options.get("fail_with"): raise ctx.options["fail_with"]
            return dict(dataset=name, source="sample", n_train=2, n_test=1, models={"m": {"rmse": 1.0}}, best="m")
        register_project(name)(run)
    make("fake_a", "ames_shap"); make("fake_b", "windsor")
    yield
    for n in ("fake_a", "fake_b"): PROJECTS.pop(n, None)

def _run_failing(monkeypatch, argv, exc):
    "`main(argv)` with the project's runner raising `exc` (the option is not on the command line)."
    import accel_course.cli as C
    real = C._ctx
    def ctx(a, project, out=None):
        c = real(a, project, out); c.options["fail_with"] = exc; return c
    monkeypatch.setattr(C, "_ctx", ctx)
    return main(argv)

def test_reusing_out_replaces_the_run_and_a_failed_run_changes_nothing(tmp_path, fake_projects, monkeypatch, capsys):
    out = tmp_path/"o"
    assert main(["run", "fake_a", "--out", str(out)]) == 0
    assert main(["run", "fake_b", "--out", str(out)]) == 0
    # regression: the second run's metrics.json sat beside the first run's figures
    assert sorted(p.name for p in out.iterdir()) == [".accel-course-run.json", "metrics.json", "windsor.png"]
    marker = json.loads((out/".accel-course-run.json").read_text())
    assert marker["project"] == "fake_b" and marker["accel_course"] and marker["finished"] >= marker["started"]
    before = _snapshot(out)
    capsys.readouterr()
    assert _run_failing(monkeypatch, ["run", "fake_a", "--out", str(out)], ValueError("bad input")) == 2
    assert "bad input" in capsys.readouterr().err
    assert _snapshot(out) == before and _leftovers(tmp_path, "o") == []     # no ames_shap.png, no staging folder
    assert _run_failing(monkeypatch, ["run", "fake_a", "--out", str(out)], KeyboardInterrupt()) == 130
    assert _snapshot(out) == before and _leftovers(tmp_path, "o") == []

def test_sigterm_during_a_run_leaves_out_as_it_was(tmp_path):
    # `kill`, docker stop, or torchrun stopping the other ranks: the half-written run must not reach --out
    job = ("import os, signal, sys\nfrom pathlib import Path\nfrom accel_course.core import register_project\n"
           "from accel_course.cli import main\n@register_project('killed')\ndef run(ctx):\n"
           "    (Path(ctx.out)/'half.png').write_bytes(b'x'); os.kill(os.getpid(), signal.SIGTERM)\n"
           "    import time; time.sleep(30)\nsys.exit(main(sys.argv[1:]))\n")
    (tmp_path/"job.py").write_text(job)
    out = tmp_path/"o"; out.mkdir(); (out/"metrics.json").write_text("{}"); before = _snapshot(out)
    r = subprocess.run([sys.executable, str(tmp_path/"job.py"), "run", "killed", "--out", str(out)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 130 and "interrupted" in r.stderr, (r.returncode, r.stderr[-2000:])
    assert _snapshot(out) == before and _leftovers(tmp_path, "o") == []

def test_foreign_folder_is_refused_naming_out_unless_overwrite(tmp_path, fake_projects, monkeypatch, capsys):
    mine = tmp_path/"mine"; mine.mkdir(); (mine/"notes.txt").write_text("keep me")
    assert main(["run", "fake_a", "--out", str(mine)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--out {mine}: is not empty and was not written by accel-course" in err
    assert "--overwrite" in err and (mine/"notes.txt").read_text() == "keep me"
    (tmp_path/"empty").mkdir()
    assert main(["run", "fake_a", "--out", str(tmp_path/"empty")]) == 0            # an empty folder is fine
    assert main(["run", "fake_a", "--out", str(mine), "--overwrite"]) == 0
    assert sorted(p.name for p in mine.iterdir()) == [".accel-course-run.json", "ames_shap.png", "metrics.json"]
    legacy = tmp_path/"legacy"; legacy.mkdir(); (legacy/"metrics.json").write_text("{}")   # a run of an older version
    assert main(["run", "fake_a", "--out", str(legacy)]) == 0
    (tmp_path/"afile").write_text("x"); capsys.readouterr()
    assert main(["run", "fake_a", "--out", str(tmp_path/"afile")]) == 2
    assert f"--out {tmp_path/'afile'}: is a file" in capsys.readouterr().err
    monkeypatch.chdir(mine)                 # the current folder, or one above it, is never replaced, even with --overwrite
    for given in (".", str(tmp_path)):
        assert main(["run", "fake_a", "--out", given, "--overwrite"]) == 2
        assert f"--out {given}: is the current folder" in capsys.readouterr().err
    assert (mine/"metrics.json").exists()

def test_run_all_stages_each_project_folder(tmp_path, fake_projects, monkeypatch, capsys):
    import accel_course.cli as C
    monkeypatch.setattr(C, "available_projects", lambda: {"fake_a": "x", "fake_b": "x"})
    root = tmp_path/"runs"
    assert main(["run", "all", "--out", str(root)]) == 0
    assert {p.name for p in root.iterdir()} == {"fake_a", "fake_b"}
    a_inode, b_before = os.stat(root/"fake_a").st_ino, _snapshot(root/"fake_b")
    real = C._ctx
    def ctx(a, project, out=None):      # fake_b fails this time: its folder keeps the previous run
        c = real(a, project, out)
        if project == "fake_b": c.options["fail_with"] = ValueError("b broke")
        return c
    monkeypatch.setattr(C, "_ctx", ctx)
    assert main(["run", "all", "--out", str(root)]) == 1
    assert _snapshot(root/"fake_b") == b_before and os.stat(root/"fake_a").st_ino != a_inode   # fake_a: a new folder
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
    shutil.rmtree(root/"fake_b"); (root/"fake_b").mkdir(); (root/"fake_b"/"data.csv").write_text("x")
    capsys.readouterr(); a_before = _snapshot(root/"fake_a")
    assert main(["run", "all", "--out", str(root)]) == 2     # checked before the first project runs
    assert f"--out {root}/fake_b: is not empty" in capsys.readouterr().err and _snapshot(root/"fake_a") == a_before

@pytest.mark.parametrize("umask, fmode, dmode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_run_outputs_follow_the_umask(tmp_path, umask, fmode, dmode):
    import tempfile
    @register_project("fake_perm")
    def run(ctx):
        fd = os.open(Path(ctx.out)/"model.safetensors", os.O_WRONLY | os.O_CREAT, 0o600); os.write(fd, b"w"); os.close(fd)
        ck = Path(tempfile.mkdtemp(dir=ctx.out)); (ck/"state.bin").write_bytes(b"s"); os.chmod(ck/"state.bin", 0o600)
        torch.save({"w": torch.ones(1)}, Path(ctx.out)/"weights.pt")
        return dict(dataset="p", source="sample", n_train=1, n_test=1, models={"m": {"rmse": 1.0}}, best="m")
    old = os.umask(umask)
    try: assert main(["run", "fake_perm", "--out", str(tmp_path/"o")]) == 0
    finally: os.umask(old); PROJECTS.pop("fake_perm", None)
    o = tmp_path/"o"
    bad = {str(p.relative_to(o)): oct(_mode(p)) for p in [o, *o.rglob("*")] if _mode(p) != (dmode if p.is_dir() else fmode)}
    assert bad == {}
    assert len([p for p in o.rglob("*") if p.is_file()]) == 5   # model, state, weights, metrics.json, marker

def test_leftovers_of_a_killed_run_are_removed(tmp_path, fake_projects):
    from accel_course.core import proc_tag
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    host = proc_tag().rsplit("-", 1)[0]
    stale = [tmp_path/f".o.staging-{host}-{dead}-abc123", tmp_path/f".o.old-{host}-{dead}-0a1b2c3d"]
    alive = tmp_path/f".o.staging-{host}-{os.getppid()}-xyz"       # a run that still runs: left alone
    for p in stale + [alive]: p.mkdir(); (p/"metrics.json").write_text("{}")
    assert main(["run", "fake_a", "--out", str(tmp_path/"o")]) == 0
    assert _leftovers(tmp_path, "o") == [alive.name]

def test_resume_reads_the_previous_run_folder_while_the_new_run_is_staged(tmp_path):
    # no project checkpoints into --out today; a runner that does must resume from the old DIR, not from its staging folder
    @register_project("fake_fit")
    def run(ctx):
        tdl, vdl = _dls(); m = make_mlp()
        h = fit(m, torch.optim.SGD(m.parameters(), lr=0.01), tdl, vdl, loss_fn=nn.MSELoss(), epochs=ctx.epochs,
                callbacks=[Checkpoints(ctx.out, resume_from=ctx.options.get("resume"))], verbose=False,
                accelerator=make_accelerator(cpu=True))
        return dict(dataset="toy", source="sample", n_train=128, n_test=64, best="mlp",
                    models={"mlp": {"val_loss": h.final["val_loss"], "epochs_run": float(len(h))}})
    out = tmp_path/"o"
    try:
        import accel_course.cli as C
        assert main(["run", "fake_fit", "--epochs", "1", "--out", str(out)]) == 0
        assert json.loads((out/"checkpoints"/"last"/"fit_state.json").read_text())["epoch"] == 1
        real = C._ctx
        def ctx(a, project, o=None):
            c = real(a, project, o); c.options["resume"] = out; return c
        C._ctx = ctx
        try: assert main(["run", "fake_fit", "--epochs", "3", "--out", str(out)]) == 0
        finally: C._ctx = real
    finally: PROJECTS.pop("fake_fit", None)
    assert json.loads((out/"checkpoints"/"last"/"fit_state.json").read_text())["epoch"] == 3
    assert json.loads((out/"metrics.json").read_text())["models"]["mlp"]["epochs_run"] == 3   # epochs 1..3, 1 restored

def test_a_real_project_rerun_leaves_no_file_of_the_previous_run(tmp_path, capsys):
    # the finding: Ames then Windsor into one --out left Ames' submission.csv beside Windsor's metrics.json
    out, common = str(tmp_path/"h"), ["--fast", "--no-explain", "--models", "linear,ridge", "--folds", "2"]
    assert main(["run", "housing", *common, "--out", out]) == 0
    assert (tmp_path/"h"/"submission.csv").exists()
    assert main(["run", "housing", "--source", "sample", *common, "--out", out]) == 0
    assert json.loads((tmp_path/"h"/"metrics.json").read_text())["dataset"] == "windsor"
    assert not (tmp_path/"h"/"submission.csv").exists()       # Windsor has no test split
    before = _snapshot(tmp_path/"h")
    (tmp_path/"bad.csv").write_text("a,b\n1,2\n3,4\n")
    assert main(["run", "housing", "--source", str(tmp_path/"bad.csv"), *common, "--out", out]) == 2
    assert _snapshot(tmp_path/"h") == before and _leftovers(tmp_path, "h") == []

# 8. the rest of the probe list: paths named on the command line, serve's options
def test_missing_model_path_is_one_line_naming_model(tmp_path, capsys):
    assert main(["run", "sentiment", "--fast", "--model", "/nonexistent", "--out", str(tmp_path/"s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("accel-course: error: --model /nonexistent: no such folder (give a local model folder or a hub "
                   "name such as bert-base-uncased)")
    assert not (tmp_path/"s").exists() and list(tmp_path.iterdir()) == []     # refused before any folder was made

@pytest.mark.parametrize("args, option", [
    (["--threads", "0"], "--threads"), (["--threads", "-2"], "--threads"), (["--threads", "x"], "--threads"),
    (["--port", "70000"], "--port"), (["--port", "-1"], "--port"),
])
def test_serve_options_are_range_checked(args, option, capsys):
    with pytest.raises(SystemExit) as e: main(["serve", "--model", "m", *args])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"argument {option}:" in err and len(err.strip().splitlines()) == 1, err

def test_serve_port_in_use_fails_before_the_model_loads(tmp_path):
    """A port in use is one line naming --port, before any model is loaded (it used to fail after 42-55 s): the model
    folder is empty, so had the model been loaded first, the error would name the folder, not the port."""
    import socket, subprocess, sys
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); port = s.getsockname()[1]
    try:
        r = subprocess.run([sys.executable, "-m", "accel_course.cli", "serve", "--model", str(tmp_path), "--port", str(port)],
                           capture_output=True, text=True, timeout=120)
    finally: s.close()
    assert r.returncode == 2 and f"--port {port}" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "safetensors" not in r.stderr and str(tmp_path) not in r.stderr, r.stderr

def test_serve_token_budget_option_is_range_checked():
    import subprocess, sys
    r = subprocess.run([sys.executable, "-m", "accel_course.cli", "serve", "--model", ".", "--max-tokens", "0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--max-tokens" in r.stderr

def test_serve_threads_default_to_the_servers_own(tmp_path, monkeypatch):
    "`accel-course serve` gives waitress serve.SERVER_THREADS threads unless --threads says otherwise."
    import accel_course.serve as S
    seen = []
    monkeypatch.setattr(S, "serve", lambda **kw: seen.append(kw["threads"]))
    assert main(["serve", "--model", str(tmp_path)]) == 0
    assert main(["serve", "--model", str(tmp_path), "--threads", "3"]) == 0
    assert seen == [S.SERVER_THREADS, 3] and S.SERVER_THREADS == 8

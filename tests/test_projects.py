"""Every registered project, the same three promises, checked the way a user runs them (`accel-course run P --fast`):
metrics.json follows the one schema, the run writes its figures as real PNG files, and the same seed gives the same
metrics (CPU). One parametrised test instead of one hand-written copy per chapter."""
import json, os, subprocess, sys
from pathlib import Path
import pytest
from accel_course.core import available_projects, validate_metrics, METRICS_KEYS

PROJECTS = sorted(available_projects())
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

def run_cli(project, out, seed):
    p = subprocess.run(["accel-course", "run", project, "--fast", "--seed", str(seed), "--out", str(out)],
                       capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, f"{project}: rc {p.returncode}\n{p.stderr[-3000:]}"
    return json.loads((Path(out)/"metrics.json").read_text())

def without_timings(m):
    "The metrics minus wall-clock figures (`runtime_s` and any per-model `*_s`), which no seed can fix."
    return {k: ({name: {mk: v for mk, v in mm.items() if not mk.endswith("_s")} for name, mm in v.items()}
                if k == "models" else v) for k, v in m.items() if k != "runtime_s"}

def test_every_chapter_is_registered():
    assert {"housing", "maintenance", "cmapss", "sentiment", "anomaly"} <= set(PROJECTS)

@pytest.mark.parametrize("project", PROJECTS)
def test_schema_figures_and_same_seed(project, tmp_path):
    a = run_cli(project, tmp_path/"a", seed=3)
    assert list(a) == list(METRICS_KEYS) and validate_metrics(a) == a and a["project"] == project
    assert a["n_train"] > 0 and a["n_test"] > 0
    pngs = sorted((tmp_path/"a").glob("*.png"))
    assert pngs, f"{project} wrote no figure"
    for f in pngs: assert f.read_bytes()[:8] == PNG_MAGIC and f.stat().st_size > 2000, f
    b = run_cli(project, tmp_path/"b", seed=3)
    assert without_timings(a) == without_timings(b)
    assert sorted(p.name for p in (tmp_path/"b").glob("*.png")) == [p.name for p in pngs]

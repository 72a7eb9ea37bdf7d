"C-MAPSS data module and chapter: loader on the real sample, malformed files, generator, protocol (windows, split, PHM score), CLI runner."
import json, math, os, subprocess, sys

import numpy as np
import pandas as pd
import pytest

from accel_course.core import DataError, RunContext, run_project, validate_metrics
from accel_course import cmapss as C, cmapss_data as D      # the chapter, and its data module

from _real import data, needs

REAL = data("nasa_cmapss")                            # ../shared/data's folder, else tests/fixtures' (cut by whole engines)
SMALL = data("nasa_cmapss/train_FD001_units1-10.txt") # the folder holds another train_FD001 file too: name the file
need_real = needs("nasa_cmapss/train_FD001_units1-10.txt", "nasa_cmapss/test_FD001_units1-3.txt",
                  "nasa_cmapss/RUL_FD001_units1-3.txt")
need_all100 = needs("nasa_cmapss/train_FD001_all100.txt")


# ---------------------------------------------------------------- real files
@need_real
def test_real_sample_shapes_names_dtypes():
    raw = SMALL.read_text().splitlines()[0]
    assert raw.endswith("  ") and len(raw.split()) == 26                  # the distributed format
    d = D.load_cmapss(SMALL, "FD001")
    assert list(d.train.columns) == D.COLUMNS and list(d.test.columns) == D.COLUMNS
    assert len(d.train) == 2136 and d.n_train == 10 and sorted(d.train["unit"].unique()) == list(range(1, 11))
    assert d.n_test == 3 and len(d.rul) == 3 and d.rul.dtype == np.float32
    assert (d.train[D.SENSORS].dtypes == np.float32).all() and d.train["cycle"].dtype == np.int32
    assert (d.train.groupby("unit")["cycle"].min() == 1).all()
    # test engines stop before failure: their RUL is positive
    assert (d.rul > 0).all()
    with pytest.raises(DataError, match="several train_FD001 files"):     # the folder alone is ambiguous
        D.load_cmapss(REAL, "FD001")


@need_real
def test_real_sample_constant_sensors_and_protocol():
    d = D.load_cmapss(SMALL)
    P = C.prepare(d, window=30, seed=0)
    assert P.pre.n_conditions == 1
    assert P.pre.dropped == ["s_1", "s_5", "s_6", "s_10", "s_16", "s_18", "s_19"]   # the usual FD001 seven
    assert P.test.X.shape == (3, 30, 14) and np.allclose(P.test.y, np.minimum(d.rul, 125))


# ---------------------------------------------------------------- malformed files
@pytest.fixture
def fleet_dir(tmp_path):
    return D.write_cmapss(D.make_cmapss("FD001", 4, 3, seed=3), tmp_path/"CMAPSSData")


def test_round_trip_through_the_distributed_format(fleet_dir):
    g = D.make_cmapss("FD001", 4, 3, seed=3)
    assert (fleet_dir/"train_FD001.txt").read_text().splitlines()[0].endswith("  ")
    d = D.load_cmapss(fleet_dir)
    assert d.train[["unit", "cycle"]].equals(g.train[["unit", "cycle"]]) and (d.rul == g.rul).all()
    assert np.allclose(d.train[D.SENSORS], g.train[D.SENSORS], rtol=1e-6, atol=1e-4)


def _edit(path, lineno, fn):
    lines = path.read_text().splitlines()
    lines[lineno - 1] = fn(lines[lineno - 1])
    path.write_text("\n".join(lines) + "\n")


def test_wrong_column_count_names_file_and_line(fleet_dir):
    f = fleet_dir/"train_FD001.txt"
    _edit(f, 5, lambda s: " ".join(s.split()[:-1]))
    with pytest.raises(DataError, match=r"train_FD001\.txt, line 5: 25 fields, expected 26"):
        D.load_cmapss(fleet_dir)


def test_non_numeric_field_names_line_and_column(fleet_dir):
    f = fleet_dir/"test_FD001.txt"
    _edit(f, 7, lambda s: " ".join(s.split()[:8] + ["x1"] + s.split()[9:]))
    with pytest.raises(DataError, match=r"test_FD001\.txt, line 7: column 9 \('s_4'\) holds 'x1', expected a number"):
        D.read_cmapss(fleet_dir)


def test_rul_length_mismatch(fleet_dir):
    (fleet_dir/"RUL_FD001.txt").write_text("10\n20\n")
    with pytest.raises(DataError, match=r"RUL_FD001\.txt: 2 RUL values, but .*test_FD001\.txt holds 3 test engines"):
        D.read_cmapss(fleet_dir)
    (fleet_dir/"RUL_FD001.txt").write_text("10\nabc\n5\n")
    with pytest.raises(DataError, match=r"RUL_FD001\.txt, line 2: holds 'abc'"):
        D.read_cmapss(fleet_dir)


def test_missing_files_and_broken_cycles(fleet_dir, tmp_path):
    with pytest.raises(DataError, match=r"no train_FD002\.txt"):
        D.read_cmapss(fleet_dir, "FD002")
    with pytest.raises(DataError, match="no such file or folder"):
        D.load_cmapss(tmp_path/"nowhere")
    f = fleet_dir/"train_FD001.txt"
    lines = f.read_text().splitlines(); del lines[10]; f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 11: unit 1: cycle 12 follows cycle 10"):
        D.read_cmapss(fleet_dir)


# ---------------------------------------------------------------- plausible ranges per subset (issue 22 item 8)
def _field(lineno, col, fn):
    "Edit one field (by column name) of one line: fn(old text) -> new text."
    j = D.COLUMNS.index(col)
    return lambda path: _edit(path, lineno, lambda s: " ".join(v if k != j else fn(v) for k, v in enumerate(s.split())) + "  ")

RANGE_CASES = [  # (case, subset, file, edit, regex of the one-line error)
    ("sensor_1e6", "FD001", "train", _field(9, "s_2", lambda v: "1e6"),
     r"train_FD001\.txt: column 's_2', line 9: 1000000\.0 -- expected a number in \[609\.1, 676\.8\]"),
    ("sign_flipped_temperature", "FD001", "train", _field(10, "s_3", lambda v: "-" + v),
     r"train_FD001\.txt: column 's_3', line 10: -1\d{3}\.\d+ -- expected a number in \[1492\.0, 1698\.0\]"),
    ("kelvin_not_rankine", "FD001", "test", _field(4, "s_4", lambda v: f"{float(v) * 5 / 9:.2f}"),
     r"test_FD001\.txt: column 's_4', line 4: 7\d\d\.\d+ -- expected a number in \[1313\.0, 1514\.0\]"),
    ("fd002_row_in_fd001", "FD001", "train", _field(3, "setting_1", lambda v: "35.0019"),
     r"column 'setting_1', line 3: 35\.0019 -- expected a number in \[-0\.05, 0\.05\] \(altitude in kft: sea level\)"),
    ("fd003_constant_sensor", "FD003", "train", _field(6, "s_16", lambda v: "0.3"),
     r"train_FD003\.txt: column 's_16', line 6: 0\.3 -- expected a number in \[0\.027, 0\.033\]"),
    ("fd002_sensor_1e6", "FD002", "train", _field(7, "s_9", lambda v: "1000000"),
     r"train_FD002\.txt: column 's_9', line 7: 1000000\.0 -- expected a number in \[1804\.0, 14800\.0\]"),
    ("fd004_mach_2_5", "FD004", "test", _field(2, "setting_2", lambda v: "2.5"),
     r"test_FD004\.txt: column 'setting_2', line 2: 2\.5 -- expected a number in \[-0\.01, 0\.85\] \(Mach"),
    ("fd004_negative_pressure", "FD004", "train", _field(5, "s_7", lambda v: "-" + v),
     r"train_FD004\.txt: column 's_7', line 5: -\d+\.\d+ -- expected a number in \[109\.9, 889\.7\]"),
    ("negative_cycle", "FD001", "train", _field(2, "cycle", lambda v: "-2"),
     r"train_FD001\.txt, line 2: column 2 \('cycle'\) holds -2, expected a whole number >= 1"),
]

@pytest.mark.parametrize("case,subset,kind,edit,expect", RANGE_CASES, ids=[c[0] for c in RANGE_CASES])
def test_out_of_range_readings_name_file_column_line_and_range(case, subset, kind, edit, expect, tmp_path):
    folder = D.write_cmapss(D.make_cmapss(subset, 4, 3, seed=5), tmp_path/"CMAPSSData")
    edit(folder/f"{kind}_{subset}.txt")
    with pytest.raises(DataError, match=expect) as e: D.read_cmapss(folder, subset)
    assert str(folder/f"{kind}_{subset}.txt") in str(e.value) and "\n" not in str(e.value)


def test_out_of_range_reading_exits_2_from_the_cli(tmp_path, capsys):
    from accel_course.cli import main
    folder = D.write_cmapss(D.make_cmapss("FD001", 4, 3, seed=5), tmp_path/"CMAPSSData")
    _field(9, "s_2", lambda v: "1e6")(folder/"train_FD001.txt")
    out = tmp_path/"o"
    assert main(["run", "cmapss", "--source", str(folder/"train_FD001.txt"), "--fast", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{folder/'train_FD001.txt'}: column 's_2', line 9: 1000000.0 -- expected a number in [609.1, 676.8]" in err
    assert not out.exists()


@pytest.mark.parametrize("subset", list(D.SUBSETS))
def test_generated_subsets_are_within_their_ranges(subset, tmp_path):
    for seed, n in ((0, None), (1, 20), (2, 20)):         # full size (the real subset's engine counts) and fast size
        g = D.make_cmapss(subset, n, n and 10, seed=seed)
        d = D.read_cmapss(D.write_cmapss(g, tmp_path/f"s{seed}"), subset)
        assert len(d.train) == len(g.train) and len(d.test) == len(g.test)


def test_ranges_are_documented_and_ordered():
    for subset, ranges in D.CMAPSS_RANGES.items():
        assert set(ranges) == set(D.SETTINGS + D.SENSORS)
        for c, r in ranges.items():
            assert r.lo < r.hi and r.why, (subset, c)
            lo, hi = D.FD001_SPAN[c]
            assert r.lo <= lo and hi <= r.hi, (subset, c)                 # real FD001 readings pass every subset


@need_all100
def test_real_fd001_files_are_within_the_ranges():
    d = D.load_cmapss(REAL/"train_FD001_all100.txt")                 # train (100 engines) and test_ via read_cmapss
    for f in ("train_FD001_all100.txt", "train_FD001_units1-10.txt", "test_FD001_units1-3.txt"):
        D.read_cmapss_file(REAL/f, "FD001")
    full = pd.read_csv(REAL/"train_FD001_all100.txt", sep=r"\s+", header=None, names=D.COLUMNS)
    assert {c: (round(float(full[c].min()), 4), round(float(full[c].max()), 4)) for c in D.FD001_SPAN} == D.FD001_SPAN
    assert d.n_train == 100


def test_sample_style_names_are_found_by_glob(tmp_path):
    g = D.make_cmapss("FD001", 3, 2, seed=0)
    d = D.write_cmapss(g, tmp_path/"x")
    for kind, suffix in (("train", "_units1-3"), ("test", "_units1-2"), ("RUL", "_units1-2")):
        (d/f"{kind}_FD001.txt").rename(d/f"{kind}_FD001{suffix}.txt")
    assert D.load_cmapss(d).n_train == 3


# ---------------------------------------------------------------- generator
@pytest.mark.parametrize("subset", ["FD001", "FD002", "FD003", "FD004"])
def test_generator_shape_and_seed(subset):
    g = D.make_cmapss(subset, 12, 8, seed=5)
    assert g.n_train == 12 and g.n_test == 8 and len(g.rul) == 8 and (g.rul >= 1).all()
    assert g.train.equals(D.make_cmapss(subset, 12, 8, seed=5).train)
    assert not g.train.equals(D.make_cmapss(subset, 12, 8, seed=6).train)
    lives = g.train.groupby("unit")["cycle"].max()
    assert lives.between(128, 362).all()
    P = C.prepare(g, seed=0)
    assert P.pre.n_conditions == (6 if subset in ("FD002", "FD004") else 1)
    assert len(P.pre.dropped) == 7 and len(P.pre.features) == 14


def test_generated_sensors_degrade_towards_failure():
    g = D.add_rul(D.make_cmapss("FD001", 30, 1, seed=0).train, cap=None)
    early, late = g[g["rul"] > 150], g[g["rul"] < 10]
    for s, sign in (("s_4", 1), ("s_7", -1), ("s_11", 1), ("s_12", -1)):
        assert sign * (late[s].mean() - early[s].mean()) > 3 * g[s][g["rul"] > 150].std() / 2


# ---------------------------------------------------------------- protocol
def test_windows_never_cross_engines():
    g = D.make_cmapss("FD001", 6, 4, seed=1)
    X = np.column_stack([g.train["unit"].to_numpy(np.float32), g.train["cycle"].to_numpy(np.float32)])
    W, y, u, end = D.engine_windows(X, g.train["unit"].to_numpy(), g.train["cycle"].to_numpy(), window=20)
    assert (W[:, :, 0] == u[:, None]).all()                                # one unit per window
    assert (np.diff(W[:, :, 1], axis=1) == 1).all()                        # consecutive cycles of that unit
    assert len(W) == sum(n - 19 for n in g.train.groupby("unit").size())
    assert (y == W[:, -1, 1]).all()
    # short engines are padded with their own first reading, never with another engine's
    Xs = np.arange(7, dtype=np.float32)[:, None]; us = np.array([1, 1, 2, 2, 2, 2, 2])
    Ws, _, uu, _ = D.engine_windows(Xs, us, window=4, last_only=True)
    assert Ws[:, :, 0].tolist() == [[0, 0, 0, 1], [3, 4, 5, 6]] and uu.tolist() == [1, 2]


def test_validation_split_is_by_engine():
    g = D.make_cmapss("FD001", 20, 5, seed=2)
    tr, va = D.engine_split(g.train["unit"], 0.2, seed=0)
    assert len(va) == 4 and not set(tr) & set(va) and set(tr) | set(va) == set(range(1, 21))
    P = C.prepare(g, window=15, seed=0)
    assert set(np.unique(P.train.unit)) == set(tr) and set(np.unique(P.valid.unit)) == set(va)
    assert P.test.X.shape[0] == 5 and list(P.test.unit) == [1, 2, 3, 4, 5]


def test_prepared_names_its_windows():
    g = D.make_cmapss("FD001", 10, 4, seed=3)
    P = C.prepare(g, window=20, seed=0, stride=3)
    for w in (P.train, P.valid, P.test, P.test_all):                      # four arrays of one length, named
        assert isinstance(w, D.Windows) and len(w) == len(w.X) == len(w.y) == len(w.unit) == len(w.cycle)
        assert w.X.shape[1:] == (20, len(P.pre.features)) and w.X.dtype == np.float32
    assert set(P.train.unit) == set(P.train_units) and set(P.valid.unit) == set(P.valid_units)
    assert len(P.test) == P.test.engines == 4 and np.allclose(P.test.y, np.minimum(g.rul, 125))
    last = g.test.groupby("unit")["cycle"].max().to_numpy()
    assert (P.test.cycle == last).all()                                  # each test engine's last cycle
    t = D.add_rul(g.test, 125, g.rul)                                    # every test window: y is the RUL at its end
    rul_at = dict(zip(zip(t["unit"], t["cycle"]), t["rul"]))
    assert all(rul_at[(u, c)] == y for u, c, y in zip(P.test_all.unit, P.test_all.cycle, P.test_all.y))
    s = P.head(7)
    assert len(s.train) == len(s.valid) == 7 and s.test is P.test and len(P.train) > 7      # P itself unchanged
    assert np.array_equal(s.train.X, P.train.X[:7])
    assert P.summary().loc["test", "windows"] == 4
    with pytest.raises(Exception): P.cap = 1                              # frozen


def test_the_chapter_module_reexports_the_data_module():
    import accel_course.cmapss_data as data
    for name in data.__all__: assert getattr(C, name) is getattr(data, name), name


def test_preprocessing_is_learned_on_training_engines_only():
    g = D.make_cmapss("FD001", 10, 10, seed=4)
    P = C.prepare(g, seed=0)
    tr_units = P.train_units
    part = g.train[g.train["unit"].isin(tr_units)]
    assert np.allclose(P.pre.mean[0], part[P.pre.features].mean().to_numpy(), rtol=1e-5)
    shifted = D.CMAPSS(g.train, g.test.assign(s_2=g.test["s_2"] + 100), g.rul)   # test data cannot move the scaling
    assert np.allclose(C.prepare(shifted, seed=0).pre.mean, P.pre.mean)


def test_rul_cap_and_test_rul():
    toy = pd.DataFrame({"unit": [1] * 200 + [2] * 3, "cycle": list(range(1, 201)) + [1, 2, 3]})
    r = D.add_rul(toy)["rul"].to_numpy()
    assert r.max() == 125 and r[199] == 0 and r[0] == 125 and r[200:].tolist() == [2, 1, 0]
    t = D.add_rul(toy, rul_end=[5, 200])["rul"].to_numpy()
    assert t[199] == 5 and t[200:].tolist() == [125, 125, 125]


def test_phm_score_hand_computed():
    e = math.e - 1
    assert C.phm_score([0], [13]) == pytest.approx(e)                     # 13 early: exp(1)-1
    assert C.phm_score([20], [10]) == pytest.approx(e)                    # 10 late: exp(1)-1
    assert C.phm_score([5], [5]) == 0
    assert C.phm_score([30, 0, 5], [0, 26, 5]) == pytest.approx(math.exp(3) - 1 + math.exp(2) - 1)
    assert C.phm_score([10], [0]) > C.phm_score([0], [10])                # late costs more than early
    m = C.rul_metrics([10, 20], [13, 16])
    assert m["rmse"] == pytest.approx(math.sqrt((9 + 16) / 2)) and m["mae"] == pytest.approx(3.5)


def test_baseline_learns_something():
    P = C.prepare(D.make_cmapss("FD001", 30, 20, seed=0), window=20, seed=0)
    m = C.fit_baselines(P, seed=0)["ridge"]
    rmse = C.rul_metrics(P.test.y, C.predict_baseline(m, P.test.X))["rmse"]
    const = C.rul_metrics(P.test.y, np.full(len(P.test.y), P.train.y.mean()))["rmse"]
    assert rmse < 0.8 * const


# ---------------------------------------------------------------- runner / CLI
def test_cli_run_writes_valid_metrics(tmp_path):
    out = tmp_path/"run"
    r = subprocess.run([sys.executable, "-m", "accel_course.cli", "run", "cmapss", "--source", "sample", "--fast",
                        "--out", str(out), "--subset", "FD002"], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    m = validate_metrics(json.loads((out/"metrics.json").read_text()))
    assert m["project"] == "cmapss" and "FD002" in m["dataset"] and m["best"] in m["models"]
    assert set(m["models"]) == set(C.MODELS)
    assert all(np.isfinite(v["rmse"]) and v["rmse"] > 0 and np.isfinite(v["phm_score"]) for v in m["models"].values())
    assert {p.name for p in out.glob("*.png")} == {"sensors.png", "trajectories.png", "error_by_bucket.png", "pred_vs_true.png"}


@need_real
def test_cli_on_real_sample(tmp_path):
    m = run_project("cmapss", RunContext(out=tmp_path, source=str(SMALL), fast=True, seed=0))
    assert m["n_train"] == 10 and m["n_test"] == 3 and str(SMALL) in m["source"]
    assert json.loads((tmp_path/"metrics.json").read_text())["n_test"] == 3


@need_all100
def test_an_explicit_train_file_is_the_file_read():
    d = D.load_cmapss(REAL/"train_FD001_all100.txt")
    assert d.n_train == 100 and len(d.train) == 20631 and d.n_test == 3 and d.source.endswith("train_FD001_all100.txt")


# ---------------------------------------------------------------- cross-validation over engines (issue 24)
def test_truncate_engines_cuts_like_the_test_set():
    tr = D.make_cmapss("FD001", 6, 1, seed=4).train
    cut, rul = C.truncate_engines(tr, seed=0, cuts=3)
    lives = tr.groupby("unit").size().to_numpy()
    kept = cut.groupby("unit").size().to_numpy()
    assert len(rul) == 18 and sorted(cut["unit"].unique()) == list(range(1, 19))
    assert np.array_equal(kept + rul, np.repeat(lives, 3))                       # kept + RUL = life
    assert (kept >= 31).all() and (rul >= 1).all() and (kept <= np.ceil(0.97 * np.repeat(lives, 3))).all()
    assert (cut.groupby("unit")["cycle"].min() == 1).all()
    again, rul2 = C.truncate_engines(tr, seed=0, cuts=3)
    assert again.equals(cut) and np.array_equal(rul, rul2)                     # seeded


def test_engine_folds_hold_out_each_engine_once():
    d = D.make_cmapss("FD001", 12, 1, seed=2)
    folds = C.engine_folds(d, k=4, seed=1, cuts=2)
    held = [set(d.train["unit"]) - set(f.train["unit"]) for f in folds]
    assert all(len(h) == 3 for h in held) and set().union(*held) == set(range(1, 13))
    assert all(f.n_test == 6 and len(f.rul) == 6 for f in folds)
    P = C.prepare(folds[0], window=20, seed=0)
    assert P.test.X.shape[0] == 6 and not set(P.train.unit) & set(held[0])
    with pytest.raises(ValueError, match="k must be"): C.engine_folds(d, k=1)


def test_pad_from_adds_padded_prefix_windows():
    X = np.arange(10, dtype=np.float32)[:, None]
    u = np.array([1] * 4 + [2] * 6)
    W, y, wu, end = D.engine_windows(X, u, np.arange(10), window=5, pad_from=4)
    assert W[:, :, 0].tolist() == [[0, 0, 1, 2, 3], [4, 4, 5, 6, 7], [4, 5, 6, 7, 8], [5, 6, 7, 8, 9]]
    assert end.tolist() == [3, 7, 8, 9] and y.tolist() == [3, 7, 8, 9]
    W0, *_ = D.engine_windows(X, u, window=5)
    assert len(W0) == 3                                                          # without: engine 2 has 2 windows


@pytest.mark.parametrize("kind,kw", [("gru", {}), ("gru", {"bidirectional": True}), ("gru", {"pool": "attn"}),
                                     ("lstm", {"layers": 2}), ("tcn", {}), ("transformer", {"layers": 1}),
                                     ("cnn", {})])
def test_rulnet_bodies_and_poolings(kind, kw):
    import torch
    m = C.RULNet(7, kind, 16, **kw)
    assert m(torch.randn(3, 30, 7)).shape == (3,)
    with pytest.raises(ValueError): C.RULNet(7, "rnn")


def test_schedules_train_through_fit():
    d = D.make_cmapss("FD001", 8, 3, seed=1)
    P = C.prepare(d, window=15, seed=0, stride=4)
    for sched in ("onecycle", "cosine"):
        m, h = C.train_rul_model(P, "gru", 8, epochs=2, seed=0, patience=None, schedule=sched)
        assert len(h) == 2 and np.isfinite(h.rows[-1]["rmse"])
    with pytest.raises(ValueError, match="schedule"): C.train_rul_model(P, "gru", 8, epochs=1, schedule="step")

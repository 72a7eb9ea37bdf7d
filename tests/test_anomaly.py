"""Tests for the network-anomaly chapter (accel_course.anomaly): loaders on the real UNSW-NB15 formats, quirks,
bad input, the generator, preprocessing, the saved pipeline and the CLI runner."""
import json, os, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from accel_course.core import DataError, RunContext, run_project, validate_metrics
from accel_course import anomaly as an
from accel_course import anomaly_data as ad   # the private helpers tested here

from _real import data, needs

REAL = data("unsw_nb15")                              # ../shared/data only (no fixture: academic-use terms)
SAMPLE = REAL/"UNSW_NB15_partition_sample.csv"
FEATURES = REAL/"NUSW-NB15_features.csv"
needs_real = needs("unsw_nb15/UNSW_NB15_partition_sample.csv")
needs_features = needs("unsw_nb15/NUSW-NB15_features.csv")


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setenv("ACCEL_COURSE_FAST", "1")


# ---------------------------------------------------------------- real formats
@needs_real
def test_partition_sample_loads():
    d = an.load_partition_csv(SAMPLE)
    assert d.n == 3026 and d.kind == "partition" and not d.has_time
    assert set(an.PARTITION_COLUMNS) <= set(d.df.columns)
    assert set(d.df["attack_cat"]) == set(an.CATEGORIES)
    assert ((d.df["label"] == 1) == (d.df["attack_cat"] != "Normal")).all()
    assert d.partition.startswith("subset")             # 3,026 rows: not a whole published partition
    assert d.df["service"].eq("-").any()                  # "-" (no service) is a level, not a missing value


@needs_real
def test_distributed_sample_bom_crlf_through_every_entry_point(tmp_path):
    # the shared sample is byte for byte as distributed: a UTF-8 byte-order mark and CRLF line ends
    raw = SAMPLE.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw[:2000]
    assert an.looks_partition(SAMPLE)
    d = an.load_unsw(str(SAMPLE))
    assert d.kind == "partition" and d.n == 3026 and d.df.columns[0] == "id"
    assert pd.api.types.is_integer_dtype(d.df["id"]) and not d.df["attack_cat"].str.contains("\r").any()
    folder = an.load_unsw(str(REAL))                      # the folder: features file skipped, partition found
    assert folder.kind == "partition" and folder.n == 3026
    # under the distributed name, through the CLI runner (the command that used to fail)
    named = tmp_path/"UNSW_NB15_training-set.csv"; named.write_bytes(raw)
    m = run_project("anomaly", RunContext(out=tmp_path/"run", source=str(named), fast=True,
                                          options={"no_ablation": True, "no_lstm": True}))
    assert m["n_test"] > 0 and "partition" in m["dataset"]


def test_bom_and_crlf_files_load_like_plain_ones(tmp_path):
    # partition CSV: generated flows written as the real files are (BOM + CRLF), compared with a plain copy
    part = an.generate_traffic(400, seed=0).df[list(an.PARTITION_COLUMNS)]
    plain, dist = tmp_path/"plain.csv", tmp_path/"UNSW_NB15_testing-set.csv"
    part.to_csv(plain, index=False)
    dist.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes().replace(b"\n", b"\r\n"))
    a, b = an.load_partition_csv(plain), an.load_unsw(str(dist))
    assert b.kind == "partition" and list(b.df.columns) == list(a.df.columns)
    pd.testing.assert_frame_equal(a.df, b.df)
    # full CSV (headerless, latin-1): the mark must not end up glued to the first srcip
    names = list(an.FULL_COLUMNS)
    text = _full_rows(names, [dict(Stime="1421927414"), dict(Stime="1421927415", srcip="10.0.0.9")])
    full = tmp_path/"UNSW-NB15_1.csv"
    full.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("latin-1"))
    d = an.load_unsw(str(full))
    assert d.kind == "full" and d.df["srcip"].tolist() == ["10.0.0.1", "10.0.0.9"]
    assert d.df["label"].tolist() == [0, 0] and d.df["stime"].tolist() == [1421927414, 1421927415]
    with pytest.raises(DataError, match="45 columns.*49"):      # a partition file handed to the full loader
        an.load_full_csv(dist)


@needs_features
def test_features_file_names_latin1():
    names = an.read_feature_names(FEATURES)
    assert len(names) == 49 and names[0] == "srcip" and names[-1] == "Label" and "ct_src_ ltm" in names
    assert [ad._canon_full_name(n) for n in names] == [ad._canon_full_name(n) for n in an.FULL_COLUMNS]


def _full_rows(names, rows):
    "Rows in the headerless full-CSV format, built from the feature list (synthetic values, not real rows)."
    base = dict.fromkeys(names, "0")
    base.update({"srcip": "10.0.0.1", "dstip": "10.0.0.2", "sport": "1234", "dsport": "80", "proto": "tcp",
                 "state": "FIN", "service": "http", "dur": "0.5", "Spkts": "4", "Dpkts": "3", "sbytes": "400",
                 "dbytes": "900", "Stime": "1421927414", "Ltime": "1421927415", "attack_cat": "", "Label": "0"})
    return "\n".join(",".join(str(dict(base, **r)[c]) for c in names) for r in rows) + "\n"


def test_full_csv_quirks_are_fixed_and_counted(tmp_path):
    names = an.read_feature_names(FEATURES) if FEATURES.exists() else list(an.FULL_COLUMNS)
    rows = [dict(attack_cat=" Fuzzers ", Label="1", sport="0x000b", Stime="1421927420"),
            dict(attack_cat="Backdoors", Label="1", dsport="-", ct_flw_http_mthd=" ", Stime="1421927410"),
            dict(attack_cat="", Label="0", is_ftp_login="", service=" dns", proto="udp", Stime="1421927400"),
            dict(attack_cat="Reconnaissance", Label="1", dsport="0xc0a8", is_ftp_login="2", Stime="1421927430")]
    f = tmp_path/"UNSW-NB15_1.csv"; f.write_text(_full_rows(names, rows), encoding="latin-1")
    d = an.load_full_csv(f, features=FEATURES if FEATURES.exists() else None)
    df = d.df
    assert d.kind == "full" and d.has_time and df["stime"].is_monotonic_increasing
    assert df["attack_cat"].tolist() == ["Normal", "Backdoor", "Fuzzers", "Reconnaissance"]
    assert df["sport"].tolist()[2] == 11 and df["dsport"].tolist() == [80, -1, 80, 0xc0a8]
    assert df["service"].tolist()[0] == "dns" and df["is_ftp_login"].max() == 1
    fx = d.fixes
    assert fx["attack_cat: blank -> Normal"] == 1 and fx["attack_cat: stray spaces stripped"] == 1
    assert fx["attack_cat: spelling unified"] == 1 and fx["sport: hexadecimal port converted"] == 1
    assert fx["dsport: hexadecimal port converted"] == 1 and fx["dsport: non-numeric port ('-', blank, ...) -> -1"] == 1
    assert fx["ct_flw_http_mthd: blank -> 0"] == 1 and fx["is_ftp_login: blank -> 0"] == 1
    assert {"rate", "smean", "response_body_len", "ct_src_ltm"} <= set(df.columns)   # renamed to the partition schema
    # the loaded full-format flows go through the same preprocessing as partition flows
    p = an.FlowPreprocessor().fit(df[df["label"] == 0])
    assert np.isfinite(p.transform(df)).all()


def _write_partition(path, n, seed=0):
    d = an.generate_traffic(n, seed=seed).df[list(an.PARTITION_COLUMNS)]
    d.to_csv(path, index=False)
    return d


def test_partition_identified_by_content_and_name_mismatch_warns(tmp_path):
    f = tmp_path/"UNSW_NB15_training-set.csv"
    _write_partition(f, 82332)
    with pytest.warns(UserWarning, match="swapped names"):
        d = an.load_partition_csv(f)
    assert d.partition == "test" and d.n == 82332 and any("swapped" in n for n in d.notes)


def test_auto_finds_real_files_under_data_root(tmp_path, monkeypatch, capsys):
    folder = tmp_path/"unsw_nb15"; folder.mkdir()
    written = _write_partition(folder/"some_partition.csv", 600)
    monkeypatch.setenv("ACCEL_COURSE_DATA", str(tmp_path))
    d = an.load_unsw("auto")
    assert d.kind == "partition" and d.n == len(written)
    assert "[accel_course:anomaly] using partition" in capsys.readouterr().out


def test_both_partitions_train_on_one_test_on_other(tmp_path):
    # two small files whose ids say which partition they come from (ids > 82,332 only exist in the 175,341-row file)
    a = an.generate_traffic(800, seed=1).df[list(an.PARTITION_COLUMNS)]; a["id"] = np.arange(100_001, 100_001 + len(a))
    b = an.generate_traffic(500, seed=2).df[list(an.PARTITION_COLUMNS)]
    a.to_csv(tmp_path/"a.csv", index=False); b.to_csv(tmp_path/"b.csv", index=False)
    d = an.load_unsw(str(tmp_path))
    assert d.n == len(a) + len(b) and "subset of train" in d.partition


# ---------------------------------------------------------------- bad input
def test_missing_column_names_file_and_column(tmp_path):
    f = tmp_path/"part.csv"
    an.generate_traffic(300).df[list(an.PARTITION_COLUMNS)].drop(columns=["sttl"]).to_csv(f, index=False)
    with pytest.raises(DataError, match=r"part\.csv.*sttl"):
        an.load_partition_csv(f)


def test_non_numeric_value_names_file_and_column(tmp_path):
    f = tmp_path/"part.csv"
    d = an.generate_traffic(300).df[list(an.PARTITION_COLUMNS)].astype({"sbytes": object})
    d.loc[5, "sbytes"] = "lots"; d.to_csv(f, index=False)
    with pytest.raises(DataError, match=r"part\.csv.*'sbytes'.*'lots'"):
        an.load_partition_csv(f)


def test_bad_label_and_unknown_category(tmp_path):
    d = an.generate_traffic(300).df[list(an.PARTITION_COLUMNS)]
    f = tmp_path/"lab.csv"; d.assign(label=d["label"].where(d.index != 3, 7)).to_csv(f, index=False)
    with pytest.raises(DataError, match=r"lab\.csv.*'label'.*0 or 1"):
        an.load_partition_csv(f)
    cat = d["attack_cat"].astype(str)        # generated text columns are categoricals: a new value needs text
    f2 = tmp_path/"cat.csv"; d.assign(attack_cat=cat.where(d.index != 3, "Ransomware")).to_csv(f2, index=False)
    with pytest.raises(DataError, match="Ransomware"):
        an.load_partition_csv(f2)


def test_full_csv_wrong_shape_and_missing_paths(tmp_path):
    f = tmp_path/"UNSW-NB15_2.csv"; f.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match=r"UNSW-NB15_2\.csv.*3 columns.*49"):
        an.load_full_csv(f)
    with pytest.raises(DataError, match="no such file"):
        an.load_unsw(str(tmp_path/"nope"))
    (tmp_path/"empty_dir").mkdir()
    with pytest.raises(DataError, match="no UNSW-NB15 CSVs"):
        an.load_unsw(str(tmp_path/"empty_dir"))
    e = tmp_path/"empty.csv"; e.write_text("")
    with pytest.raises(DataError, match="empty"):
        an.load_partition_csv(e)


# ---------------------------------------------------------------- generator
def test_generator_properties():
    g = an.generate_traffic(6000, seed=3)
    df = g.df
    assert g.has_time and df["stime"].is_monotonic_increasing and (df["ltime"] >= df["stime"]).all()
    assert set(df["attack_cat"]) == set(an.CATEGORIES) and abs(df["label"].mean() - 0.3) < 0.03
    assert df.equals(an.generate_traffic(6000, seed=3).df) and not df.equals(an.generate_traffic(6000, seed=4).df)
    assert df["sbytes"].max() > 100 * df["sbytes"].median()                    # heavy tail
    assert {"tcp", "udp"} <= set(df["proto"]) and df["service"].eq("-").any()
    # each category behaves differently: Generic is tiny one-way UDP DNS, Worms carry big HTTP payloads
    gen, worms = df[df["attack_cat"] == "Generic"], df[df["attack_cat"] == "Worms"]
    assert (gen["proto"] == "udp").mean() > 0.8 and gen["dpkts"].median() == 0
    assert worms["smean"].median() > 2 * df[df["label"] == 0]["smean"].median()
    # attacks arrive in bursts: their per-minute counts are far more dispersed (variance/mean) than normal traffic's
    per_min = df.assign(m=df["stime"] // 60).groupby(["m", "label"]).size().unstack(fill_value=0)
    disp = per_min.var() / per_min.mean()
    assert disp[1] > 5 * disp[0], disp
    # connection counters are computed over the last 100 flows, so bursts light them up
    assert df.loc[df["label"] == 1, "ct_src_ltm"].median() > 3 * df.loc[df["label"] == 0, "ct_src_ltm"].median()
    with pytest.raises(ValueError):
        an.generate_traffic(10)


# ---------------------------------------------------------------- preprocessing, splits, pipeline
def test_preprocessor_fit_on_normal_json_roundtrip_and_unseen_levels():
    d = an.generate_traffic(3000, seed=0); sp = an.make_splits(d)
    assert sp.train["stime"].max() <= sp.test["stime"].min()
    p = an.FlowPreprocessor().fit(sp.train_normal)
    with pytest.warns(UserWarning, match="normal traffic only"):
        an.FlowPreprocessor().fit(sp.train)
    q = an.FlowPreprocessor.from_dict(json.loads(json.dumps(p.to_dict())))
    odd = sp.test.head(3).copy(); odd["proto"] = "never-seen"; odd.loc[odd.index[1], "dur"] = np.nan
    X = q.transform(odd)
    assert X.shape == (3, p.n_features) and np.isfinite(X).all()
    assert (X[:, p.feature_names.index("proto=other")] == 1).all()
    assert not set(an.NON_FEATURES) & set(p.features)                 # ids, labels, addresses, ports, times dropped


def test_pipeline_save_load_without_pickle(tmp_path):
    d = an.generate_traffic(2000, seed=0); sp = an.make_splits(d)
    p = an.FlowPreprocessor().fit(sp.train_normal); Xn = p.transform(sp.train_normal)
    ae, hist = an.train_autoencoder(Xn, epochs=1, batch_size=128, mixed_precision="bf16")
    pipe = an.AnomalyPipeline(p, ae, 0.5, an.error_stats(ae, Xn))
    path = pipe.save(tmp_path/"pipe")
    assert sorted(os.listdir(path)) == ["model.safetensors", "pipeline.json"]
    assert b"pickle" not in (path/"pipeline.json").read_bytes()
    again = an.AnomalyPipeline.load(path)
    out = an.score_flows(sp.test, path)
    assert list(out.columns) == ["score", "is_anomaly"] and out.index.equals(sp.test.index)
    assert np.array_equal(out["score"].to_numpy(), pipe.score_flows(sp.test)["score"].to_numpy())
    assert np.array_equal(again.scores(sp.test), pipe.scores(sp.test))


def test_lstm_autoencoder_under_cpu_bf16_autocast():
    # oneDNN has no bf16 LSTM on CPUs without AVX-512-BF16/AMX: the recurrent layers must run in fp32 on CPU
    import torch
    torch.manual_seed(0)
    m = an.LSTMAutoencoder(6, hidden=8, latent=4); x = torch.randn(3, 5, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
        _, (h, _) = m._rnn(m.encoder, x)
    assert y.shape == x.shape and torch.isfinite(y).all() and h.dtype == torch.float32
    assert torch.equal(h, m.encoder(x)[1][0])                # same encoder state as a plain fp32 pass


def test_autoencoder_training_lets_accelerate_place_the_model(monkeypatch):
    import accel_course.training as training
    seen, real = {}, training.fit                           # the shared `training.fit`, under `fit_arrays`
    monkeypatch.setattr(training, "fit", lambda *a, **k: (seen.update(k), real(*a, **k))[1])
    X = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    an.train_autoencoder(X, epochs=1, batch_size=32)
    assert seen and not seen.get("cpu", False)               # no hard-coded CPU: a GPU is used when present


def test_library_never_switches_the_matplotlib_backend():
    import inspect
    assert "matplotlib.use(" not in inspect.getsource(an)    # it would break inline plots in the notebook


# ---------------------------------------------------------------- CLI runner
# schema, figures and same-seed reproducibility of every project: tests/test_projects.py
def test_runner_writes_every_detector_figures_and_pipeline(tmp_path):
    m1 = run_project("anomaly", RunContext(out=tmp_path/"a", source="sample", fast=True, seed=5, mixed_precision="bf16"))
    for model in ("isolation_forest", "autoencoder", "lstm_autoencoder", "random_forest"):
        assert {"auc_roc", "pr_auc", "precision", "recall", "f1"} <= set(m1["models"][model])
    assert m1["best"] != "random_forest"
    on_disk = json.loads((tmp_path/"a"/"metrics.json").read_text()); validate_metrics(on_disk)
    for png in ("roc_pr", "per_category", "timeline", "ae_history", "ablation"):
        assert (tmp_path/"a"/f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path/"a"/"pipeline"/"model.safetensors").exists()


def test_lstm_training_is_seeded():
    # the LSTM's weights are drawn after seeding: the same seed gives the same model whatever ran before
    X = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    import torch
    a, _ = an.train_lstm_autoencoder(X, window=8, epochs=1, seed=3)
    torch.rand(10)                                        # disturb the global RNG
    b, _ = an.train_lstm_autoencoder(X, window=8, epochs=1, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@needs_real
def test_runner_on_real_partition_sample(tmp_path):
    m = run_project("anomaly", RunContext(out=tmp_path, source=str(SAMPLE), fast=True, options={"no_ablation": True}))
    assert "lstm_autoencoder" not in m["models"]          # the partition CSVs have no time axis
    assert m["models"]["random_forest"]["auc_roc"] > 0.9 and m["models"]["isolation_forest"]["auc_roc"] > 0.6
    assert m["n_test"] > 0 and "partition" in m["dataset"]


# ---------------------------------------------------------------- data contracts (issue 10: no silent acceptance)
def _part(tmp_path, edit=None, name="part.csv"):
    d = an.generate_traffic(300).df[list(an.PARTITION_COLUMNS)].astype(object)
    if edit: d.loc[edit[0], edit[1]] = edit[2]
    f = tmp_path/name; d.to_csv(f, index=False); return f

@pytest.mark.parametrize("edit,match", [
    ((4, "sbytes", -10), r"'sbytes', line 6: -10 -- expected a number in \[0"),
    ((7, "dpkts", -1), r"'dpkts', line 9: -1"),
    ((2, "dur", "inf"), r"'dur', line 4: inf -- expected a finite number"),
    ((3, "sload", ""), r"'sload', line 5: nan -- expected a number"),
    ((5, "attack_cat", "Ransomware"), r"'attack_cat', line 7: 'Ransomware' -- expected one of"),
    ((6, "label", 2), r"'label', line 8: 2 -- expected 0 or 1"),
])
def test_partition_contract(tmp_path, edit, match):
    f = _part(tmp_path); assert an.load_partition_csv(f).n == len(pd.read_csv(f))
    with pytest.raises(DataError, match=r"part\.csv: column " + match): an.load_partition_csv(_part(tmp_path, edit))

def test_label_must_agree_with_attack_cat(tmp_path):
    f = _part(tmp_path); d = pd.read_csv(f); i = int((d["attack_cat"] == "Normal").to_numpy().nonzero()[0][0])
    d.loc[i, "label"] = 1; d.to_csv(f, index=False)
    with pytest.raises(DataError, match=rf"part\.csv: column 'attack_cat', line {i + 2}: 'Normal'.*disagree"):
        an.load_partition_csv(f)

def test_full_csv_contract_counts_lines_without_header(tmp_path):
    names = list(an.FULL_COLUMNS)
    f = tmp_path/"UNSW-NB15_1.csv"
    f.write_text(_full_rows(names, [dict(Stime="1421927414"), dict(Stime="1421927415", Spkts="-4")]), encoding="latin-1")
    with pytest.raises(DataError, match=r"UNSW-NB15_1\.csv: column 'spkts', line 2: -4"): an.load_full_csv(f)
    f.write_text(_full_rows(names, [dict(Stime="1421927414", attack_cat="Exploits", Label="0")]), encoding="latin-1")
    with pytest.raises(DataError, match=r"UNSW-NB15_1\.csv: column 'attack_cat', line 1: 'Exploits'.*disagree"):
        an.load_full_csv(f)

def test_gzip_partition_loads_and_a_truncated_one_is_named(tmp_path):
    import gzip
    f = _part(tmp_path); raw = f.read_bytes(); g = tmp_path/"UNSW_NB15_testing-set.csv.gz"
    g.write_bytes(gzip.compress(raw))
    assert an.load_unsw(str(g)).n == len(pd.read_csv(f))
    z = gzip.compress(raw); g.write_bytes(z[:len(z) // 2])          # regression: EOFError from deep inside pandas
    with pytest.raises(DataError, match=r"UNSW_NB15_testing-set\.csv\.gz: the gzip archive is damaged or truncated"):
        an.load_unsw(str(g))

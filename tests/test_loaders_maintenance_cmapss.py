"""Malformed-input suite for the predictive-maintenance loaders (issue 10: "silent acceptance is the worst outcome").

Each case mutates one of the real samples in ../shared/data (AI4I 2020, the Azure PdM folder, NASA C-MAPSS; read at
test time and written to tmp_path; AI4I and C-MAPSS fall back to their copies in tests/fixtures) and asserts one outcome:
* a regex: a `DataError` whose message names the file and matches it (column and line, or what is missing);
* "ok": a valid variant (BOM, CRLF, reordered or extra columns, ...) loads exactly the same data as the untouched file;
* "warns": a last line without a line break whose fields are complete (a CSV may end so, or be cut inside its last
  number: nothing in the bytes tells the two apart) loads, with a warning that names the file and says "truncated".
"""
import re, warnings

import numpy as np
import pandas as pd
import pytest

from accel_course.core import DataError
from accel_course import maintenance as M
from accel_course import cmapss_data as C        # the C-MAPSS readers (data module)

from _real import data, real
from _malformed import BOM, R, LINE, ERR_TRUNC, GENERIC_CSV, Table, swap, reorder, extra, drop, cut, cell

AI4I = data("ai4i2020/ai4i2020.csv")                 # ../shared/data's, else tests/fixtures'
AZURE = data("azure_pdm")
CMAPSS = data("nasa_cmapss")
CM_FILES = {"train": "train_FD001_units1-10.txt", "test": "test_FD001_units1-3.txt", "RUL": "RUL_FD001_units1-3.txt"}
AZURE_REL = [f"azure_pdm/{n}" for n in M.AZURE_FILES.values()]
CMAPSS_REL = [f"nasa_cmapss/{n}" for n in CM_FILES.values()]
MODES = M.AI4I_MODES


# ---------------------------------------------------------------- mutations that need to look at the rows
def _where(t, pred):
    "Data-row indices whose cells (a dict column -> text) satisfy `pred`."
    return [i for i, r in enumerate(t.rows) if pred(dict(zip(t.header, r)))]

def _set_where(col, value, pred, k=None):
    "Set `col` to `value` (or `value(old)`) on the first `k` rows where `pred` holds (all if k is None)."
    def f(t):
        for i in _where(t, pred)[:k]:
            old = t.rows[i][t.col(col)]
            t.set(col, value(old) if callable(value) else value, i)
        return t.bytes()
    return f

def _no_mode(r): return all(r[m] == "0" for m in MODES)
def _healthy(r): return r["Machine failure"] == "0" and _no_mode(r)

def _shift(col):
    "Every value of `col` moved one row down (a label column shifted against its readings)."
    def f(t):
        j = t.col(col); vals = [r[j] for r in t.rows]
        for r, v in zip(t.rows, ["0"] + vals[:-1]): r[j] = v
        return t.bytes()
    return f

def _dup_ids(t, n=100):
    "Rows 100..100+n-1 get the UDIs of rows 0..n-1 (the probe's 100 duplicate UDIs)."
    j = t.col("UDI")
    for i in range(n): t.rows[100 + i][j] = t.rows[i][j]
    return t.bytes()

def _other_type(t):
    "Row R's Type changed to another quality (its Product ID keeps the old letter)."
    j = t.col("Type"); t.rows[R][j] = {"L": "M", "M": "L", "H": "L"}[t.rows[R][j]]; return t.bytes()

def _insert(i, row_of=lambda t: list(t.rows[R])):
    "A copy of a row inserted as data row `i`."
    def f(t): t.rows.insert(i, row_of(t)); return t.bytes()
    return f

def _fields(delta):
    "Data row R with one field more (+1) or one less (-1)."
    def f(t):
        if delta > 0: t.rows[R].append("7")
        else: t.rows[R].pop()
        return t.bytes()
    return f

def _replace(old, new):
    return lambda t: t.bytes().replace(old.encode(), new.encode())


GENERIC = GENERIC_CSV + [
    ("extra_field", _fields(+1), rf"could not be parsed as CSV.*line {R + 2}\b"),
]

AI4I_CASES = [
    ("cut_last_line", cut(7), ERR_TRUNC),
    ("no_label", drop("Machine failure"), r"missing required column.*Machine failure"),
    ("no_udi", drop("UDI"), r"missing required column.*UDI"),
    # the probe's findings
    ("labels_flipped", _set_where("Machine failure", lambda v: str(1 - int(v)), lambda r: True),
     r"column 'Machine failure', line \d+: 0 -- expected 1: this line flags a TWF/HDF/PWF/OSF"),
    ("udi_100_duplicates", _dup_ids, r"column 'UDI', line 102: 1 -- expected a unique id .*\(100 bad row"),
    # keys and types
    ("udi_duplicate", cell("UDI", "3"), rf"column 'UDI', {LINE}: 3 -- expected a unique id"),
    ("udi_text", cell("UDI", "abc"), rf"column 'UDI', {LINE}: 'abc' -- expected a number"),
    ("udi_half", cell("UDI", "10.5"), rf"column 'UDI', {LINE}: 10.5 -- expected a whole number"),
    ("udi_zero", cell("UDI", "0"), rf"column 'UDI', {LINE}: 0 -- expected a number in \[1"),
    ("type_unknown", cell("Type", "X"), rf"column 'Type', {LINE}: 'X' -- expected one of"),
    ("type_vs_product_id", _other_type, rf"column 'Product ID', {LINE}: '[LMH]\d+' -- expected the product's quality letter"),
    # readings: ranges and finite values
    ("air_in_celsius", cell("Air temperature [K]", "25.1"), rf"column 'Air temperature \[K\]', {LINE}: 25.1 -- expected a number in \[250"),
    ("air_inf", cell("Air temperature [K]", "inf"), rf"column 'Air temperature \[K\]', {LINE}: inf -- expected a finite number"),
    ("process_nan", cell("Process temperature [K]", "NaN"), rf"column 'Process temperature \[K\]', {LINE}: nan -- expected a number"),
    ("rpm_negative", cell("Rotational speed [rpm]", "-1500"), rf"column 'Rotational speed \[rpm\]', {LINE}: -1500"),
    ("rpm_text", cell("Rotational speed [rpm]", "fast"), rf"column 'Rotational speed \[rpm\]', {LINE}: 'fast'"),
    ("rpm_fraction", cell("Rotational speed [rpm]", "1500.5"), rf"column 'Rotational speed \[rpm\]', {LINE}: 1500.5 -- expected a whole number"),
    ("torque_blank", cell("Torque [Nm]", ""), rf"column 'Torque \[Nm\]', {LINE}: nan -- expected a number \(no blank"),
    ("torque_neg_inf", cell("Torque [Nm]", "-inf"), rf"column 'Torque \[Nm\]', {LINE}: -inf -- expected a finite number"),
    ("wear_half", cell("Tool wear [min]", "10.5"), rf"column 'Tool wear \[min\]', {LINE}: 10.5 -- expected a whole number"),
    ("field_missing", _fields(-1), rf"column 'RNF', {LINE}: nan -- expected a number"),
    # labels: 0/1, and consistent with the failure modes
    ("failure_2", cell("Machine failure", "2"), rf"column 'Machine failure', {LINE}: 2 -- expected 0 or 1"),
    ("twf_text", cell("TWF", "yes"), rf"column 'TWF', {LINE}: 'yes' -- expected a number"),
    ("mode_without_failure", _set_where("HDF", "1", _healthy, 1), r"column 'Machine failure', line \d+: 0 -- expected 1: this line flags"),
    ("failure_cleared_on_mode_row", _set_where("Machine failure", "0", lambda r: r["OSF"] == "1", 1),
     r"column 'Machine failure', line \d+: 0 -- expected 1"),
    ("labels_shifted", _shift("Machine failure"), r"column 'Machine failure', line \d+: 0 -- expected 1"),
    ("modes_shifted", lambda t: (_shift("PWF")(t), _shift("HDF")(t))[1], r"column 'Machine failure', line \d+: 0 -- expected 1"),
    ("failures_without_mode_60", _set_where("Machine failure", "1", _healthy, 60),
     r"column 'Machine failure', line \d+: 1 -- expected labels that agree.*69 failures with no failure mode, more than the 50"),
    ("rnf_without_failure_60", _set_where("RNF", "1", _healthy, 60),
     r"column 'Machine failure', line \d+: 0 -- expected labels that agree.*78 RNF flags without a failure"),
    ("modes_only_blank", cell("OSF", ""), rf"column 'OSF', {LINE}: nan"),
]

KAGGLE_NAMES = {"TWF": "Tool Wear Failure", "HDF": "Heat Dissipation Failure", "PWF": "Power Failure",
                "OSF": "Overstrain Failure", "RNF": "Random Failures"}

def _kaggle_bytes() -> bytes:
    "The Kaggle variant rebuilt from the real UCI file the way it was made: Target = Machine failure, one Failure Type."
    df = pd.read_csv(AI4I, encoding="utf-8-sig")
    ft = df[MODES].idxmax(axis=1).map(KAGGLE_NAMES).where(df[MODES].sum(axis=1) > 0, "No Failure")
    out = df.drop(columns=["Machine failure", *MODES]).assign(Target=df["Machine failure"], **{"Failure Type": ft})
    return out.to_csv(index=False).encode()

KAGGLE_CASES = [
    ("target_flipped", _set_where("Target", lambda v: str(1 - int(v)), lambda r: True),
     r"column 'Target', line \d+: 0 -- expected 1: this line flags"),
    ("failure_type_unknown", cell("Failure Type", "Broken"), rf"column 'Failure Type', {LINE}: 'Broken' -- expected one of"),
    ("power_failure_target_0", _set_where("Failure Type", "Power Failure", lambda r: r["Target"] == "0", 1),
     r"column 'Target', line \d+: 0 -- expected 1"),
    ("no_failure_target_1_x60", _set_where("Target", "1", lambda r: r["Failure Type"] == "No Failure", 60),
     r"column 'Target', line \d+: 1 -- expected labels that agree.*69 failures with no failure mode"),
    ("target_2", cell("Target", "2"), rf"column 'Target', {LINE}: 2 -- expected 0 or 1"),
    ("reordered_columns", reorder, "ok"),
    ("crlf_bom", lambda t: t.bytes(eol="\r\n", bom=True), "ok"),
]

AZURE_CASES = [  # (file, case, mutation, expected)
    # the probe's findings
    ("telemetry", "machine_id_1.5", cell("machineID", "1.5"), rf"column 'machineID', {LINE}: 1.5 -- expected a whole number"),
    ("telemetry", "volt_inf", cell("volt", "inf"), rf"column 'volt', {LINE}: inf -- expected a finite number"),
    ("telemetry", "row_twice", _insert(R + 1), rf"column 'datetime', line {R + 3}: '.+' -- expected one telemetry row per \(datetime, machineID\)"),
    # telemetry
    ("telemetry", "machine_unknown", cell("machineID", "11"), rf"column 'machineID', {LINE}: 11 -- expected a machine listed in PdM_machines.csv"),
    ("telemetry", "machine_text", cell("machineID", "m1"), rf"column 'machineID', {LINE}: 'm1' -- expected a number"),
    ("telemetry", "rotate_nan", cell("rotate", "nan"), rf"column 'rotate', {LINE}: nan"),
    ("telemetry", "pressure_negative", cell("pressure", "-100.9"), rf"column 'pressure', {LINE}: -100.9 -- expected a number in \[0"),
    ("telemetry", "vibration_text", cell("vibration", "high"), rf"column 'vibration', {LINE}: 'high'"),
    ("telemetry", "datetime_us_format", cell("datetime", "01/01/2015 16:00"), rf"column 'datetime', {LINE}: '01/01/2015 16:00' -- expected a time stamp"),
    ("telemetry", "datetime_blank", cell("datetime", ""), rf"column 'datetime', {LINE}: nan -- expected a time stamp"),
    ("telemetry", "no_volt", drop("volt"), r"missing required column.*volt"),
    ("telemetry", "cut_in_last_line", cut(40), ERR_TRUNC),
    ("telemetry", "cut_mid_file", lambda t: t.bytes()[:len(t.bytes()) // 2], ERR_TRUNC),
    ("telemetry", "cut_in_last_number", cut(5), "warns"),
    ("telemetry", "empty", lambda t: b"", r"file is empty"),
    ("telemetry", "reordered_columns", reorder, "ok"),
    ("telemetry", "extra_column", extra, "ok"),
    ("telemetry", "crlf_bom", lambda t: t.bytes(eol="\r\n", bom=True), "ok"),
    ("telemetry", "iso_timestamps", _replace(" ", "T"), "ok"),
    ("telemetry", "no_final_break", lambda t: t.bytes(final=False), "ok"),
    # errors, maintenance and failure logs
    ("errors", "error_unknown", cell("errorID", "error9"), rf"column 'errorID', {LINE}: 'error9' -- expected one of"),
    ("errors", "machine_zero", cell("machineID", "0"), rf"column 'machineID', {LINE}: 0 -- expected a number in \[1"),
    ("errors", "cut_last_line", cut(3), rf"column 'errorID', line \d+: 'erro' .*looks truncated"),
    ("maint", "comp_unknown", cell("comp", "comp5"), rf"column 'comp', {LINE}: 'comp5' -- expected one of"),
    ("maint", "machine_unknown", cell("machineID", "12"), rf"column 'machineID', {LINE}: 12 -- expected a machine listed"),
    ("failures", "failure_unknown", cell("failure", "comp9", row=3), r"column 'failure', line 5: 'comp9' -- expected one of"),
    ("failures", "machine_1.5", cell("machineID", "1.5", row=3), r"column 'machineID', line 5: 1.5 -- expected a whole number"),
    ("failures", "month_13", cell("datetime", "2015-13-01 06:00:00", row=3), r"column 'datetime', line 5: '2015-13-01 06:00:00'"),
    ("failures", "header_only", lambda t: t.bytes()[:t.bytes().index(b"\n") + 1], r"no data rows"),
    ("machines", "id_twice", cell("machineID", "3", row=5), r"column 'machineID', line 7: 3 -- expected a unique id"),
    ("machines", "model_unknown", cell("model", "model7", row=5), r"column 'model', line 7: 'model7' -- expected one of"),
    ("machines", "age_negative", cell("age", "-1", row=5), r"column 'age', line 7: -1 -- expected a number in \[0"),
    ("machines", "no_age", drop("age"), r"missing required column.*age"),
    ("machines", "file_missing", None, r"missing PdM_machines.csv"),
]


# ---------------------------------------------------------------- C-MAPSS: space-separated, no header
def _lines(raw: bytes) -> list:
    return raw.decode("latin-1").split("\n")[:-1]            # as distributed: LF, every line ends with "  \n"

def _join(lines, eol="\n", final=True) -> bytes:
    return (eol.join(lines) + (eol if final else "")).encode("latin-1")

def _field(j, value, row=R):
    "Field j (0-based) of line row+1 replaced by `value`."
    def f(raw):
        L = _lines(raw); p = L[row].split(); p[j] = value; L[row] = " ".join(p) + "  "; return _join(L)
    return f

def _lines_edit(fn): return lambda raw: _join(fn(_lines(raw)))

CM_LINE = rf"line {R + 1}\b"       # C-MAPSS has no header: data row R is line R + 1
CMAPSS_CASES = [  # (file, case, mutation, expected)
    ("train", "field_missing", _field(25, ""), rf", {CM_LINE}: 25 fields, expected 26"),
    ("train", "field_extra", _lines_edit(lambda L: L[:R] + [L[R] + "7 "] + L[R + 1:]), rf", {CM_LINE}: 27 fields, expected 26"),
    ("train", "lines_merged", _lines_edit(lambda L: L[:R] + [L[R] + L[R + 1]] + L[R + 2:]), rf", {CM_LINE}: 52 fields"),
    ("train", "sensor_text", _field(8, "x1"), rf", {CM_LINE}: column 9 \('s_4'\) holds 'x1', expected a number"),
    ("train", "sensor_nan", _field(10, "nan"), rf", {CM_LINE}: column 11 \('s_6'\) holds 'nan', expected a finite number"),
    ("train", "sensor_inf", _field(25, "inf"), rf", {CM_LINE}: column 26 \('s_21'\) holds 'inf', expected a finite number"),
    ("train", "setting_beyond_float32", _field(2, "1e39"), rf", {CM_LINE}: column 3 \('setting_1'\) holds '1e39', expected a finite"),
    ("train", "unit_fraction", _field(0, "1.5"), rf", {CM_LINE}: column 1 \('unit'\) holds 1.5, expected a whole number"),
    ("train", "cycle_zero", _field(1, "0", row=0), r", line 1: column 2 \('cycle'\) holds 0, expected a whole number >= 1"),
    ("train", "cycle_repeated", _lines_edit(lambda L: L[:R + 1] + [L[R]] + L[R + 1:]), rf", line {R + 2}: unit 1: cycle {R + 1} follows cycle {R + 1}"),
    ("train", "cycles_swapped", _lines_edit(lambda L: L[:R] + [L[R + 1], L[R]] + L[R + 2:]), rf", {CM_LINE}: unit 1: cycle {R + 2} follows cycle {R}\b"),
    ("train", "first_cycles_lost", _lines_edit(lambda L: L[5:]), r", line 1: unit 1 starts at cycle 6; expected every engine's record to start at cycle 1"),
    ("train", "unit_1_appended_again", _lines_edit(lambda L: L + [l for l in L if l.split()[0] == "1"]),
     r", line \d+: unit 1 starts again after other units"),
    ("train", "cut_mid_file", lambda raw: raw[:len(raw) // 2], ERR_TRUNC),
    ("train", "cut_trailing_spaces", lambda raw: raw[:-3], r"has no line break and not the trailing spaces.*looks truncated"),
    ("train", "cut_in_last_line", lambda raw: raw[:-20], r"has no line break and \d+ of 26 fields: the file looks truncated"),
    ("train", "empty", lambda raw: b"", r"no data lines"),
    ("train", "no_final_break", lambda raw: raw[:-1], "ok"),
    ("train", "crlf", lambda raw: _join(_lines(raw), eol="\r\n"), "ok"),
    ("train", "tabs", lambda raw: _join(["\t".join(l.split()) for l in _lines(raw)]), "ok"),
    ("train", "blank_line_at_end", lambda raw: raw + b"\n", "ok"),
    ("test", "sensor_nan", _field(12, "NaN"), rf", {CM_LINE}: column 13 \('s_8'\) holds 'NaN', expected a finite number"),
    ("test", "cut_in_last_line", lambda raw: raw[:-30], ERR_TRUNC),
    ("test", "extra_engine", _lines_edit(lambda L: L + [" ".join(["4", "1"] + l.split()[2:]) + "  " for l in L[:1]]),
     r"RUL_FD001_units1-3.txt: 3 RUL values, but .*test_FD001_units1-3.txt holds 4 test engines"),
    ("RUL", "inf", _lines_edit(lambda L: ["inf  "] + L[1:]), r"RUL_FD001_units1-3.txt, line 1: holds 'inf', expected a whole number >= 0"),
    ("RUL", "nan", _lines_edit(lambda L: L[:1] + ["nan  "] + L[2:]), r"RUL_FD001_units1-3.txt, line 2: holds 'nan'"),
    ("RUL", "negative", _lines_edit(lambda L: L[:1] + ["-5  "] + L[2:]), r"RUL_FD001_units1-3.txt, line 2: holds '-5'"),
    ("RUL", "fraction", _lines_edit(lambda L: L[:2] + ["12.5  "]), r"RUL_FD001_units1-3.txt, line 3: holds '12.5'"),
    ("RUL", "text", _lines_edit(lambda L: ["abc  "] + L[1:]), r"RUL_FD001_units1-3.txt, line 1: holds 'abc', expected a number"),
    ("RUL", "two_fields", _lines_edit(lambda L: ["112 98  "] + L[2:]), r"RUL_FD001_units1-3.txt, line 1: 2 fields"),
    ("RUL", "line_missing", _lines_edit(lambda L: L[:2]), r"RUL_FD001_units1-3.txt: 2 RUL values, but .* holds 3 test engines"),
    ("RUL", "cut_last_value", lambda raw: raw[:-4], r"RUL_FD001_units1-3.txt, line 3: \(the last\) has no line break .*looks truncated"),
    ("RUL", "no_final_break", lambda raw: raw[:-1], "ok"),
]


# ---------------------------------------------------------------- runners
def _check(load, path_in_msg, expect, case):
    "Run `load`; assert the expected outcome. Returns the loaded data for 'ok'/'warns'."
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        if expect in ("ok", "warns"):
            out = load()
            if expect == "warns":
                msgs = [str(x.message) for x in w]
                assert any("truncated" in m and path_in_msg in m for m in msgs), f"{case}: no truncation warning in {msgs}"
            return out
        with pytest.raises(DataError) as e: load()
    msg = str(e.value)
    assert path_in_msg in msg, msg
    assert re.search(expect, msg), f"{case}: expected /{expect}/ in: {msg}"


def _same_ai4i(a, b):
    pd.testing.assert_frame_equal(a.df, b.df)
    assert a.variant == b.variant


AI4I_ALL = [(n, f, e) for n, f, e in GENERIC + AI4I_CASES]
KAGGLE_ALL = [(n, f, e) for n, f, e in KAGGLE_CASES]

@pytest.mark.parametrize("case,mutate,expect", AI4I_ALL, ids=[n for n, *_ in AI4I_ALL])
def test_ai4i(case, mutate, expect, tmp_path):
    real("ai4i2020/ai4i2020.csv")
    p = tmp_path/"ai4i2020.csv"
    p.write_bytes(mutate(Table(AI4I.read_bytes())))
    got = _check(lambda: M.load_ai4i(p), "ai4i2020.csv", expect, case)
    if expect == "ok": _same_ai4i(M.load_ai4i(AI4I), got)


@pytest.mark.parametrize("case,mutate,expect", KAGGLE_ALL, ids=[n for n, *_ in KAGGLE_ALL])
def test_ai4i_kaggle_variant(case, mutate, expect, tmp_path):
    real("ai4i2020/ai4i2020.csv")
    base = tmp_path/"base"/"predictive_maintenance.csv"; base.parent.mkdir(); base.write_bytes(_kaggle_bytes())
    p = tmp_path/"predictive_maintenance.csv"
    p.write_bytes(mutate(Table(base.read_bytes())))
    got = _check(lambda: M.load_ai4i(p), "predictive_maintenance.csv", expect, case)
    if expect == "ok": _same_ai4i(M.load_ai4i(base), got)


def _azure_copy(folder):
    folder.mkdir()
    for name in M.AZURE_FILES.values(): (folder/name).write_bytes((AZURE/name).read_bytes())
    return folder

def _same_azure(a, b):
    for k in M.AZURE_FILES: pd.testing.assert_frame_equal(getattr(a, k), getattr(b, k))

@pytest.mark.parametrize("key,case,mutate,expect", AZURE_CASES, ids=[f"{k}-{n}" for k, n, *_ in AZURE_CASES])
def test_azure(key, case, mutate, expect, tmp_path):
    for rel in AZURE_REL: real(rel)
    d = _azure_copy(tmp_path/"azure")
    f = d/M.AZURE_FILES[key]
    if mutate is None: f.unlink()
    else: f.write_bytes(mutate(Table(f.read_bytes())))
    got = _check(lambda: M.load_azure_pdm(d), M.AZURE_FILES[key] if mutate else str(d), expect, case)
    if expect == "ok": _same_azure(M.load_azure_pdm(AZURE), got)


def _same_cmapss(a, b):
    pd.testing.assert_frame_equal(a.train, b.train); pd.testing.assert_frame_equal(a.test, b.test)
    assert np.array_equal(a.rul, b.rul)

def _cmapss_copy(d):
    "A folder with one train, test and RUL file of the shared samples (the shared folder holds two train files)."
    d.mkdir()
    for name in CM_FILES.values(): (d/name).write_bytes((CMAPSS/name).read_bytes())
    return d

@pytest.mark.parametrize("key,case,mutate,expect", CMAPSS_CASES, ids=[f"{k}-{n}" for k, n, *_ in CMAPSS_CASES])
def test_cmapss(key, case, mutate, expect, tmp_path):
    for rel in CMAPSS_REL: real(rel)
    d = _cmapss_copy(tmp_path/"cmapss")
    f = d/CM_FILES[key]; f.write_bytes(mutate(f.read_bytes()))
    named = CM_FILES["RUL"] if case == "extra_engine" else CM_FILES[key]
    got = _check(lambda: C.read_cmapss(d, "FD001"), named, expect, case)
    if expect == "ok": _same_cmapss(C.read_cmapss(_cmapss_copy(tmp_path/"clean"), "FD001"), got)


def test_real_samples_load_without_warning(tmp_path):
    "The untouched samples meet every contract, quietly (the documented AI4I disagreements are counted, not refused)."
    for rel in ["ai4i2020/ai4i2020.csv", *AZURE_REL, *CMAPSS_REL]: real(rel)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = M.load_ai4i(AI4I); M.load_azure_pdm(AZURE); C.read_cmapss(_cmapss_copy(tmp_path/"cm"), "FD001")
    assert a.notes and "9 failures with no mode flag, 18 RNF flags" in a.notes[0]


def test_suite_size():
    cases = AI4I_ALL + KAGGLE_ALL + [c[1:] for c in AZURE_CASES] + [c[1:] for c in CMAPSS_CASES]
    errors = [c for c in cases if c[-1] not in ("ok", "warns")]
    assert len(cases) >= 40 and len(errors) >= 40

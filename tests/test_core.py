"""Issue 22, data and runs: duplicated header names, gzip files named .csv, reordered UNSW columns, plausible ranges,
and a run folder swap killed between its two renames.

Real-format cases mutate the samples in ../shared/data (read at test time, written to tmp_path; California falls back to
its copy in tests/fixtures, UNSW-NB15 cases skip without ../shared).
Each refused file gets one line naming the file and the column (and line), exit 2 through `accel-course`, and no
output folder or staging leftover."""
import gzip, json, os, re, signal, subprocess, sys, textwrap, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from accel_course.core import (DataError, read_table, read_table_chunks, header_fields, require_unique_header,
                               replace_dir, recover_dir, parked_dirs, atomic_dir, proc_tag, register_project, PROJECTS)
from accel_course.checks import Checker, Range, is_compressed
from accel_course import anomaly as an
from accel_course import housing as H
from accel_course.cli import main

from _real import real
from _malformed import Table, reorder, cell

UNSW = "unsw_nb15/UNSW_NB15_partition_sample.csv"            # relative to ../shared/data (no fixture: academic use)
CAL = "housing/california/housing_sample3000.csv"             # ../shared/data's, else tests/fixtures'
ROOT = Path(__file__).resolve().parents[1]

def _need(rel):
    "The bytes of the real sample `rel`, or skip with one line naming it."
    __tracebackhide__ = True                                 # the skip is reported at the test's line
    return real(rel).read_bytes()

def _rename(raw: bytes, col: str, to: str) -> bytes:
    "The sample with header column `col` renamed `to` (its data untouched)."
    t = Table(raw); t.header[t.col(col)] = to
    return t.bytes()

def _cli(capsys, tmp_path, project, src, *extra):
    "`accel-course run PROJECT --source SRC --fast --out tmp/out`: (exit code, stderr lines); nothing may be left over."
    capsys.readouterr()
    rc = main(["run", project, "--source", str(src), "--fast", "--out", str(tmp_path/"out"), *extra])
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    return rc, err

def _nothing_written(tmp_path):
    assert not (tmp_path/"out").exists() and not [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")]

# ---- 1. a column named twice in the header ---------------------------------------------------------------------

def test_duplicate_header_names_file_column_and_both_positions(tmp_path):
    f = tmp_path/"t.csv"; f.write_text("id,price,rooms,price\n1,2,3,4\n")
    with pytest.raises(DataError) as e: read_table(f)
    assert str(e.value) == (f"{f}: column 'price' appears twice in the header (columns 2 and 4); rename or remove one "
                            "(pandas would silently read the second as 'price.1')")
    g = tmp_path/"g.csv"; g.write_bytes(gzip.compress(f.read_bytes()))              # gzip under a plain name
    with pytest.raises(DataError, match=r"g\.csv: column 'price' appears twice .*columns 2 and 4"):
        list(read_table_chunks(g, 1))
    b = tmp_path/"bom.csv"; b.write_bytes(b"\xef\xbb\xbfid,x, id\r\n1,2,3\r\n")       # BOM, CRLF, a stray space
    with pytest.raises(DataError, match=r"column 'id' appears twice .*columns 1 and 3"):
        read_table(b, encoding="utf-8-sig")
    t = tmp_path/"t.tsv"; t.write_text("a\tb\ta\n1\t2\t3\n")
    with pytest.raises(DataError, match=r"column 'a' .*columns 1 and 3"): read_table(t, sep="\t")

def test_distinct_or_blank_names_and_headerless_reads_pass(tmp_path):
    f = tmp_path/"ok.csv"; f.write_text('"",a,"b,c",a.1,\n1,2,3,4,5\n')          # blank names, a quoted comma, 'a.1'
    assert header_fields(f) == ["", "a", "b,c", "a.1", ""]
    assert list(read_table(f).columns[1:4]) == ["a", "b,c", "a.1"]
    require_unique_header(["", "x", ""], f)
    d = tmp_path/"d.csv"; d.write_text("a,a\n1,2\n")
    assert read_table(d, header=None).shape == (2, 2) and read_table(d, names=["p", "q"]).shape == (2, 2)

def test_duplicate_header_in_the_real_samples_exits_2(tmp_path, capsys):
    raw = _need(CAL)
    p = tmp_path/"housing.csv"; p.write_bytes(_rename(raw, "total_rooms", "median_income"))
    with pytest.raises(DataError, match=r"housing\.csv: column 'median_income' appears twice in the header "
                                        r"\(columns 4 and 8\)"):
        H.load_housing(p, dataset="california", verbose=False)
    rc, err = _cli(capsys, tmp_path, "housing", p)
    assert rc == 2 and len(err) == 1 and "housing.csv: column 'median_income' appears twice" in err[0], err
    _nothing_written(tmp_path)
    u = tmp_path/"UNSW_part.csv"; u.write_bytes(_rename(_need(UNSW), "dbytes", "sbytes"))
    with pytest.raises(DataError, match=r"UNSW_part\.csv: column 'sbytes' appears twice in the header "
                                        r"\(columns 8 and 9\)"):
        an.load_partition_csv(u)
    rc, err = _cli(capsys, tmp_path, "anomaly", u)
    assert rc == 2 and len(err) == 1 and "UNSW_part.csv: column 'sbytes' appears twice" in err[0], err
    _nothing_written(tmp_path)

def test_unsw_features_file_and_full_csv_header_with_a_name_twice(tmp_path):
    names = list(an.FULL_COLUMNS)
    feats = tmp_path/"NUSW-NB15_features.csv"
    dup = [n if n != "dbytes" else "Sbytes" for n in names]         # 'Sbytes' is 'sbytes' in the partition spelling
    feats.write_text("No.,Name,Type ,Description\n" + "".join(f"{i},{n},integer,x\n" for i, n in enumerate(dup, 1)),
                     encoding="latin-1")
    with pytest.raises(DataError, match=r"NUSW-NB15_features\.csv: column 'Name' lists 'Sbytes' twice "
                                        r"\(lines 9 and 10\)"):
        an.read_feature_names(feats)
    full = tmp_path/"UNSW-NB15_1.csv"
    full.write_text(",".join(dup) + "\n" + ",".join("0" for _ in dup) + "\n", encoding="latin-1")
    with pytest.raises(DataError, match=r"UNSW-NB15_1\.csv: column 'sbytes' appears twice in the header "
                                        r"\(columns 8 and 9\)"):
        an.load_full_csv(full)

# ---- 2. a gzip file named .csv ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["unsw", "california"])
def test_gzip_named_csv_loads_like_the_plain_file(kind, tmp_path):
    raw = _need(UNSW if kind == "unsw" else CAL)
    plain, g = tmp_path/"plain.csv", tmp_path/"x.csv"
    plain.write_bytes(raw); g.write_bytes(gzip.compress(raw))
    assert is_compressed(g) and not is_compressed(plain) and g.read_bytes()[:2] == b"\x1f\x8b"
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # not even a "may be truncated" warning
        if kind == "unsw":
            pd.testing.assert_frame_equal(an.load_partition_csv(plain).df, an.load_partition_csv(g).df)
            assert an.load_unsw(str(g)).n == len(pd.read_csv(plain))
        else:
            a, b = (H.load_housing(p, dataset="california", verbose=False) for p in (plain, g))
            pd.testing.assert_frame_equal(a.X, b.X)
            np.testing.assert_array_equal(a.y, b.y)

def test_gzip_named_csv_cut_short_is_still_named(tmp_path):
    raw = _need(UNSW); z = gzip.compress(raw)
    g = tmp_path/"x.csv"; g.write_bytes(z[:len(z) // 2])
    with pytest.raises(DataError, match=r"x\.csv: the gzip archive is damaged or truncated"): an.load_partition_csv(g)

def test_plain_csv_cut_short_is_still_truncated(tmp_path):
    f = tmp_path/"t.csv"; f.write_text("a,b,c\n1,2,3\n4,5")
    with pytest.raises(DataError, match=r"t\.csv: line 3 \(the last\) has no line break and only 2 of 3 fields"):
        Checker(pd.read_csv(f), f)

# ---- 3. reordered UNSW columns with a correct header ---------------------------------------------------------

def test_reordered_partition_csv_is_read_by_name_or_named_precisely(tmp_path, capsys):
    raw = _need(UNSW)
    r = tmp_path/"UNSW_part.csv"; r.write_bytes(reorder(Table(raw)))
    assert an.looks_partition(r) and not an.looks_partition(_full(tmp_path))
    cols = list(an.PARTITION_COLUMNS)
    pd.testing.assert_frame_equal(an.load_partition_csv(real(UNSW)).df[cols], an.load_partition_csv(r).df[cols])
    with pytest.raises(DataError) as e: an.load_full_csv(r)
    assert "UNSW_part.csv: is a partition CSV" in str(e.value) and "49 headerless columns" not in str(e.value)
    # through the CLI: read by name where 32_anomaly dispatches with `looks_partition`, else this precise line
    rc, err = _cli(capsys, tmp_path, "anomaly", r, "--epochs", "1")
    if rc == 0: assert json.loads((tmp_path/"out"/"metrics.json").read_text())["project"] == "anomaly"
    else:
        assert rc == 2 and len(err) == 1 and "UNSW_part.csv: is a partition CSV" in err[0], err
        _nothing_written(tmp_path)

def _full(tmp_path, names=None, rows=({},)):
    "A tiny full CSV (synthetic values), with a header line in `names` order if given."
    base = dict.fromkeys(an.FULL_COLUMNS, "0")
    base.update(srcip="10.0.0.1", dstip="10.0.0.2", sport="1234", dsport="80", proto="tcp", state="FIN", service="http",
                dur="0.5", Spkts="4", Dpkts="3", sbytes="400", dbytes="900", Stime="1421927414", Ltime="1421927415",
                attack_cat="", Label="0")
    order = names or list(an.FULL_COLUMNS)
    lines = ([",".join(order)] if names else []) + [",".join(dict(base, **r).get(c, "0") for c in order) for r in rows]
    p = tmp_path/("UNSW-NB15_hdr.csv" if names else "UNSW-NB15_1.csv"); p.write_text("\n".join(lines) + "\n")
    return p

def test_full_csv_with_a_reordered_header_is_read_by_name(tmp_path):
    rows = [dict(Stime="1421927415", srcip="10.0.0.9"), dict(sttl="254")]
    a = an.load_full_csv(_full(tmp_path, rows=rows))
    b = an.load_full_csv(_full(tmp_path, names=list(an.FULL_COLUMNS)[::-1], rows=rows))
    pd.testing.assert_frame_equal(a.df, b.df)
    bad = _full(tmp_path, names=list(an.FULL_COLUMNS)[:-1] + ["note"], rows=rows)
    with pytest.raises(DataError, match=r"UNSW-NB15_hdr\.csv: the first line is a header, but not of the 49 .*"
                                        r"missing \['label'\], unknown \['note'\]"):
        an.load_full_csv(bad)
    hdr = _full(tmp_path, names=list(an.FULL_COLUMNS)[::-1], rows=[{}, dict(Sjit="-2")])
    with pytest.raises(DataError, match=r"UNSW-NB15_hdr\.csv: column 'sjit', line 3: -2"):   # lines count the header
        an.load_full_csv(hdr)

# ---- 4. plausible ranges -------------------------------------------------------------------------------------

def test_checker_plausible_names_file_column_line_value_and_why(tmp_path):
    f = tmp_path/"h.csv"; f.write_text("population,rooms,port\n3000,4,80\n1e308,5,443\n")
    ranges = {"population": Range(1, 1e5, "people in one block group"), "rooms": Range(0, None, "a count", True),
              "port": Range(0, 65535, "a 16-bit port", True), "absent": Range(0, 1)}
    with pytest.raises(DataError) as e: Checker(pd.read_csv(f), f).plausible(ranges)
    assert str(e.value) == (f"{f}: column 'population', line 3: 1e+308 -- expected a number in [1, 100000.0] "
                            "(people in one block group) (1 bad row(s))")
    ok = Checker(pd.read_csv(f).head(1), f).plausible(ranges)
    assert list(ok) == ["population", "rooms", "port"] and ok["port"].tolist() == [80.0]
    f.write_text("population,rooms,port\n3000,4.5,80\n")
    with pytest.raises(DataError, match=r"column 'rooms', line 2: 4.5 -- expected a whole number"):
        Checker(pd.read_csv(f), f).plausible(ranges)

@pytest.mark.parametrize("col,value,why", [
    ("sttl", "300", r"\[0, 255\] \(an IP time to live"),
    ("dwin", "65536", r"\[0, 65535\] \(a TCP window"),
    ("stcpb", "4294967296", r"\[0, 4294967295\]"),
    ("smean", "1e308", r"\[0, 65535\] \(a mean packet size"),
    ("ct_srv_src", "101", r"\[0, 100\] \(counted among the last 100 connections"),
    ("is_sm_ips_ports", "2", r"\[0, 1\]"),
    ("sbytes", "-1", r"\[0, inf\]"),
    ("dur", "1e400", r"a finite number"),            # 1e400 overflows to inf
])
def test_unsw_values_outside_their_documented_range(col, value, why, tmp_path):
    raw = _need(UNSW)
    p = tmp_path/"UNSW_part.csv"; p.write_bytes(cell(col, value)(Table(raw)))
    with pytest.raises(DataError) as e: an.load_partition_csv(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: column '{col}', line 12: ") and "\n" not in msg and re.search(why, msg), msg

def test_unsw_ports_outside_16_bits_in_a_full_csv(tmp_path):
    with pytest.raises(DataError, match=r"UNSW-NB15_1\.csv: column 'dsport', line 2: 70000 -- expected a number in "
                                        r"\[-1, 65535\] \(a 16-bit TCP/UDP port"):
        an.load_full_csv(_full(tmp_path, rows=[{}, dict(dsport="70000")]))
    d = an.load_full_csv(_full(tmp_path, rows=[dict(sport="0xffff"), dict(dsport="-")]))
    assert sorted(d.df["sport"].tolist()) == [1234, 65535] and d.df["dsport"].min() == -1

def test_unsw_range_violation_exits_2_through_the_cli(tmp_path, capsys):
    p = tmp_path/"UNSW_part.csv"; p.write_bytes(cell("sttl", "300")(Table(_need(UNSW))))
    rc, err = _cli(capsys, tmp_path, "anomaly", p)
    assert rc == 2 and len(err) == 1, err
    assert "UNSW_part.csv: column 'sttl', line 12: 300 -- expected a number in [0, 255]" in err[0], err
    _nothing_written(tmp_path)

def test_the_real_unsw_sample_is_inside_every_range():
    d = an.load_partition_csv(real(UNSW))
    for c, r in an.UNSW_RANGES.items():
        if c in d.df:
            x = d.df[c].astype(float)
            assert (r.lo is None or x.min() >= r.lo) and (r.hi is None or x.max() <= r.hi), c

# ---- 5. a run folder swap killed between its two renames ------------------------------------------------------

_KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from accel_course import core
    out, at = Path(sys.argv[1]), int(sys.argv[2])
    stage = out.with_name(f".{out.name}.staging-{core.proc_tag()}-abcd1234")   # as `accel-course run` names it
    stage.mkdir(); (stage/"metrics.json").write_text("new"); (stage/"fig.png").write_text("new")
    real, calls = os.replace, [0]
    def replace(a, b):          # SIGKILL right after rename number `at` of the swap
        real(a, b); calls[0] += 1
        if calls[0] == at: os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace
    core.replace_dir(stage, out)
""")

def _folder(p, text):
    p.mkdir(); (p/"metrics.json").write_text(text); (p/"fig.png").write_text(text)
    return p

def _state(d):
    "{name: the run it holds} for every folder in `d`; the process-specific parts of hidden names shortened."
    short = lambda n: re.sub(r"^\.out\.(prev|staging)-.*", r".out.\1", n)
    return {short(p.name): (p/"metrics.json").read_text() for p in sorted(Path(d).iterdir())
            if (p/"metrics.json").exists()}

def _kill_swap(tmp_path, at):
    "A process that swaps a new run into tmp/out (holding the old run) and is SIGKILLed after rename `at`."
    _folder(tmp_path/"out", "old")
    r = subprocess.run([sys.executable, "-c", _KILLER, str(tmp_path/"out"), str(at)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr[-2000:])

def test_kill_between_the_two_renames_keeps_the_old_run_recoverable(tmp_path):
    _kill_swap(tmp_path, 1)
    # no `out` at all, but the complete old run parked beside it (and the complete new one in its staging folder)
    assert _state(tmp_path) == {".out.prev": "old", ".out.staging": "new"}
    assert [p.name[:10] for p in parked_dirs(tmp_path/"out")] == [".out.prev-"]
    assert recover_dir(tmp_path/"out") and _state(tmp_path) == {"out": "old", ".out.staging": "new"}
    assert (tmp_path/"out"/"fig.png").read_text() == "old" and not recover_dir(tmp_path/"out")

def test_kill_after_the_second_rename_keeps_the_new_run(tmp_path):
    _kill_swap(tmp_path, 2)
    assert _state(tmp_path) == {"out": "new", ".out.prev": "old"}
    assert not recover_dir(tmp_path/"out") and _state(tmp_path) == {"out": "new"}    # the old copy is removed now

def test_after_a_killed_swap_a_failed_run_keeps_the_old_one_and_a_good_run_replaces_it(tmp_path, capsys):
    _kill_swap(tmp_path, 1)
    @register_project("fake_core")
    def run(ctx):
        (Path(ctx.out)/"fig.png").write_text("next")
        if ctx.options.get("fail"): raise DataError("bad.csv: column 'x', line 2: 'y' -- expected a number")
        return dict(dataset="toy", source="sample", n_train=2, n_test=1, models={"m": {"rmse": 1.0}}, best="m")
    import accel_course.cli as C
    real = C._ctx
    def failing(a, project, out=None):
        c = real(a, project, out); c.options["fail"] = True
        return c
    try:
        C._ctx = failing
        assert main(["run", "fake_core", "--out", str(tmp_path/"out")]) == 2       # the next run fails...
        st = _state(tmp_path)            # ...and the old run survives it: put back, or still parked for recover_dir
        assert st in ({"out": "old"}, {".out.prev": "old"}), st
        C._ctx = real
        assert main(["run", "fake_core", "--out", str(tmp_path/"out")]) == 0       # a good run takes its place
    finally:
        C._ctx = real
        PROJECTS.pop("fake_core", None)
    assert (tmp_path/"out"/"fig.png").read_text() == "next" and json.loads((tmp_path/"out"/"metrics.json").read_text())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []

def test_a_parked_copy_of_a_live_process_is_left_alone(tmp_path):
    live = tmp_path/f".out.prev-{proc_tag().rsplit('-', 1)[0]}-{os.getppid()}-0a1b2c3d"
    _folder(live, "old")
    assert parked_dirs(tmp_path/"out") == [] and not recover_dir(tmp_path/"out") and live.exists()

def test_replace_dir_and_atomic_dir_still_swap_and_roll_back(tmp_path):
    with atomic_dir(tmp_path/"ck") as t: (t/"w").write_text("v1")
    with atomic_dir(tmp_path/"ck") as t: (t/"w").write_text("v2")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path/"ck") as t: (t/"w").write_text("half"); raise RuntimeError("crash")
    assert (tmp_path/"ck"/"w").read_text() == "v2" and [p.name for p in tmp_path.iterdir()] == ["ck"]
    src = _folder(tmp_path/"src", "s")
    (tmp_path/"ck2").write_text("a file")                       # a file in the way is replaced too
    replace_dir(src, tmp_path/"ck2")
    assert (tmp_path/"ck2"/"metrics.json").read_text() == "s"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "ck2"]

def test_an_old_run_parked_by_an_earlier_version_is_recovered_too(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()          # a process that has exited
    legacy = _folder(tmp_path/f".out.old-{proc_tag().rsplit('-', 1)[0]}-{dead}-0a1b2c3d", "old")
    assert recover_dir(tmp_path/"out") and not legacy.exists() and _state(tmp_path) == {"out": "old"}

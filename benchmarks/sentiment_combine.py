"""Score averages of out-of-fold probabilities saved by `sentiment_quality.py --save-probas FILE.csv`.

Several runs of `sentiment_quality.py` on the SAME data, folds and seed (e.g. one per seed offset, run side by side,
one thread each) write one CSV each; this script joins them on (row, fold, label) and prints, per fold and as mean +-
std over folds, the accuracy of every column and of the average of every `--ensemble` group of columns.

    python benchmarks/sentiment_combine.py runs/s0.csv runs/s1.csv runs/s2.csv \
        --ensemble "four of seed 0=member:cls_s0,member:mean_s0,member:cls_s0_sel,member:mean_s0_sel" \
        --ensemble "all members=member:*"

A group is `name=col,col,...`; a column may end in `*` (every column with that prefix, from every file). Members
(`member:` columns) with the same name in two files must hold the same numbers (the same seeded run): the script
checks that and keeps one; other same-named columns that differ (each run's own `refit_ens`) get `@<file stem>`. It trains nothing; choose the groups BEFORE looking at their scores, or the best one is optimistic.
"""
import argparse, sys
from pathlib import Path

import numpy as np
import pandas as pd


def read_runs(paths) -> pd.DataFrame:
    "Join the CSVs on their row order, after checking that every file has the same folds and labels."
    base = None
    for p in paths:
        if not Path(p).exists(): sys.exit(f"{p}: not found")
        df = pd.read_csv(p)
        for c in ("fold", "label"):
            if c not in df: sys.exit(f"{p}: no column {c!r}; expected a CSV written by sentiment_quality.py --save-probas")
        if base is None: base = df; continue
        if len(df) != len(base) or not (df[["fold", "label"]].to_numpy() == base[["fold", "label"]].to_numpy()).all():
            sys.exit(f"{p}: folds or labels differ from {paths[0]}; runs must use the same --data, --folds and --seed")
        for c in df.columns.drop(["fold", "label"]):
            same = c not in base or np.allclose(df[c], base[c], equal_nan=True)
            if not same and c.startswith("member:"):
                sys.exit(f"{p}: column {c!r} differs from the same column of an earlier file (not the same seeded run)")
            base[c if same else f"{c}@{Path(p).stem}"] = df[c]      # e.g. each run's own refit_ens
    return base


def expand(cols, spec: str) -> list:
    out = []
    for c in spec.split(","):
        got = [x for x in cols if x.startswith(c[:-1])] if c.endswith("*") else [c] if c in cols else []
        if not got: sys.exit(f"--ensemble: no column matches {c!r}; columns are {list(cols)}")
        out += [g for g in got if g not in out]
    return out


def fold_accuracy(df: pd.DataFrame, p: np.ndarray) -> pd.Series:
    "Accuracy per fold of P(last label) `p`: positive above 0.5, as argmax over two classes (a tie goes to label 0)."
    return ((p > 0.5).astype(int) == df.label).groupby(df.fold).mean()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--ensemble", action="append", default=[], help="name=col,col*,... (repeatable)")
    a = ap.parse_args(argv)
    df = read_runs(a.csv)
    if df.label.nunique() != 2: sys.exit("sentiment_combine scores two-class files only")
    cols = [c for c in df.columns if c not in ("fold", "label")]
    if df[cols].isna().any().any(): sys.exit(f"missing probabilities in {df[cols].columns[df[cols].isna().any()].tolist()}")
    rows = {c: fold_accuracy(df, df[c].to_numpy()) for c in cols}
    for g in a.ensemble:
        if "=" not in g: sys.exit(f"--ensemble {g!r}: expected name=col,col,...")
        name, spec = g.split("=", 1); members = expand(cols, spec)
        rows[f"{name} ({len(members)})"] = fold_accuracy(df, df[members].mean(axis=1).to_numpy())
    print(f"{len(df)} reviews, {df.fold.nunique()} folds, from {', '.join(a.csv)}; accuracy, mean +- std over folds:")
    w = max(map(len, rows))
    for name, s in rows.items():
        print(f"  {name:<{w}}  {s.mean():.4f} +- {s.std(ddof=1):.4f}   folds {' '.join(f'{v:.3f}' for v in s)}")


if __name__ == "__main__":
    main()

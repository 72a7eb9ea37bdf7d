"""How low can Windsor go? Model families under repeated 5-fold CV on log price (not a test: it prints one run).

Issue #3 asks for 5-fold CV RMSE(log) <= 0.20 on Windsor (546 houses, 11 features); OLS on logs reaches ~0.213.
This script tries what the chapter's exercise 8 suggests and more -- splines on lot size, counts as categories,
pairwise interactions (ridge and lasso), robust regression, an RBF SVM, a Gaussian process with per-feature
length scales plus a linear kernel, forests, boosting and a stacked ensemble -- each under the same 5-fold CV
repeated with 3 shuffles, so that a 0.003 "win" on one split is not mistaken for progress.

    python benchmarks/housing_windsor_search.py [--repeats 3] [--source sample|PATH/Housing.csv] [--max-rows 2000]

The SVM and the Gaussian process cost O(n^2)-O(n^3) in the rows: a file larger than `--max-rows` (default 2,000,
four times Windsor) is searched on a seeded random subset of that size, and the script says so in one line.
"""
import argparse, time, warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor, StackingRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, DotProduct, WhiteKernel
from sklearn.linear_model import HuberRegressor, LassoCV, LinearRegression, RidgeCV
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, SplineTransformer, StandardScaler
from sklearn.svm import SVR

from accel_course.housing import WINDSOR_YESNO, load_housing

warnings.filterwarnings("ignore")
ALPHAS = np.logspace(-3, 3, 30)


def design(X: pd.DataFrame) -> pd.DataFrame:
    "Yes/no columns as 0/1, lot size in logs (the hedonic-pricing convention)."
    X = X.copy()
    for c in WINDSOR_YESNO:
        if c in X: X[c] = X[c].astype(str).str.lower().isin(["yes", "1", "true"]).astype(float)
    X["lotsize"] = np.log(X["lotsize"].astype(float))
    return X.astype(float)


def candidates(n_features: int) -> dict:
    counts = ["bedrooms", "bathrms", "stories", "garagepl"]
    gp_kernel = (ConstantKernel(1.0) * RBF(length_scale=np.full(n_features, 3.0)) + ConstantKernel(0.1) * DotProduct()
                 + WhiteKernel(0.05))
    ridge = lambda: make_pipeline(StandardScaler(), RidgeCV(ALPHAS))
    return {
        "ols": LinearRegression(),
        "ridge": ridge(),
        "huber": make_pipeline(StandardScaler(), HuberRegressor(max_iter=2000)),
        "spline(lotsize)+ridge": make_pipeline(
            ColumnTransformer([("sp", SplineTransformer(n_knots=4), ["lotsize"])], remainder="passthrough"),
            StandardScaler(), RidgeCV(ALPHAS)),
        "counts as categories+ridge": make_pipeline(
            ColumnTransformer([("oh", OneHotEncoder(handle_unknown="ignore", min_frequency=10), counts)],
                              remainder="passthrough"), StandardScaler(with_mean=False), RidgeCV(ALPHAS)),
        "pairwise interactions+ridge": make_pipeline(StandardScaler(), PolynomialFeatures(2, include_bias=False),
                                                     StandardScaler(), RidgeCV(np.logspace(-1, 4, 30))),
        "pairwise interactions+lasso": make_pipeline(StandardScaler(), PolynomialFeatures(2, include_bias=False),
                                                     StandardScaler(), LassoCV(cv=5, max_iter=20000, random_state=0)),
        "svr rbf (C=1, gamma=0.01)": make_pipeline(StandardScaler(), SVR(C=1.0, gamma=0.01, epsilon=0.05)),
        "gaussian process (ARD + linear)": make_pipeline(StandardScaler(), GaussianProcessRegressor(gp_kernel, normalize_y=True)),
        "random forest": RandomForestRegressor(500, min_samples_leaf=3, max_features=0.5, n_jobs=2, random_state=0),
        "hist gradient boosting": HistGradientBoostingRegressor(learning_rate=0.05, max_iter=300, min_samples_leaf=20,
                                                                random_state=0),
        "stack(ridge, svr, hgb)": StackingRegressor(
            [("ridge", ridge()), ("svr", make_pipeline(StandardScaler(), SVR(C=1.0, gamma=0.01, epsilon=0.05))),
             ("hgb", HistGradientBoostingRegressor(learning_rate=0.05, max_iter=200, random_state=0))],
            final_estimator=RidgeCV(ALPHAS), cv=5),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="sample", help="sample (pydataset's Windsor copy) or a Housing.csv path")
    ap.add_argument("--repeats", type=int, default=3, help="5-fold CV repeated with this many shuffles")
    ap.add_argument("--max-rows", type=int, default=2000, help="search on a seeded random subset this large (0: all rows)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    data = load_housing(a.source, dataset="windsor")
    if a.max_rows and data.n > a.max_rows:
        n0, data = data.n, data.subsample(a.max_rows, seed=a.seed)
        print(f"--max-rows {a.max_rows:,}: searching on a seeded random {data.n:,} of the {n0:,} rows (SVM and GP are quadratic+)")
    X, y = design(data.X), np.asarray(data.y_log)
    rows = []
    for name, model in candidates(X.shape[1]).items():
        t0 = time.perf_counter()
        per = [-cross_val_score(model, X, y, cv=KFold(5, shuffle=True, random_state=42 + r),
                                scoring="neg_root_mean_squared_error").mean() for r in range(a.repeats)]
        rows.append(dict(model=name, rmse_log=np.mean(per), min=np.min(per), max=np.max(per),
                         seconds=time.perf_counter() - t0))
        print(f"  {name:34s} RMSE(log) {np.mean(per):.4f}  ({np.min(per):.4f}-{np.max(per):.4f})", flush=True)
    r = pd.DataFrame(rows).set_index("model").sort_values("rmse_log")
    print(f"\n== Windsor ({len(y)} houses), 5-fold CV x {a.repeats} shuffles, RMSE on log price")
    print(r.round(4).to_string())
    best = r.index[0]
    print(f"best: {best} = {r.loc[best, 'rmse_log']:.4f} (target <= 0.20: "
          f"{'met' if r.loc[best, 'rmse_log'] <= 0.20 else 'NOT met'})")


if __name__ == "__main__":
    main()

"""The alternative a user would write: one pandas + SciPy script doing the core work of the
pipeline on a purchases CSV (Kaggle columns + ``Purchase Date``, as ``generate`` writes).

Written as a competent analyst would: the pyarrow CSV engine, explicit dtypes, categoricals,
vectorised groupbys, and a vectorised BG/NBD log-likelihood fitted with L-BFGS-B on log
parameters (numerical gradients, the usual approach). No warehouse, no validation report,
no lake: it is the floor of "what a notebook does", for the benchmark's pandas/ours ratio.

    python bench/pandas_pipeline.py purchases.csv  →  prints a JSON summary on stdout
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln

STATES = None  # a real analyst would validate against a list; we check non-empty


def read(path: str) -> pd.DataFrame:
    df = pd.read_csv(
        path,
        engine="pyarrow",
        dtype={"Customer ID": "string", "Category": "category", "Season": "category",
               "Location": "category", "Gender": "category", "Item Purchased": "category"},
        parse_dates=["Purchase Date"],
    )
    return df.rename(columns={
        "Customer ID": "customer_id", "Purchase Amount (USD)": "amount", "Age": "age",
        "Category": "category", "Season": "season", "Location": "state",
        "Review Rating": "rating", "Purchase Date": "date",
    })


def clean(df: pd.DataFrame) -> pd.DataFrame:
    ok = (
        df["customer_id"].notna() & df["amount"].notna() & (df["amount"] >= 0)
        & df["age"].between(0, 120) & df["state"].notna() & df["date"].notna()
        & (df["rating"].isna() | df["rating"].between(1, 5))
    )
    return df[ok]


def rfm(df: pd.DataFrame) -> pd.DataFrame:
    end = df["date"].max()
    days = df[["customer_id", "date"]].drop_duplicates()
    g = df.groupby("customer_id", observed=True)
    out = pd.DataFrame({
        "first": g["date"].min(),
        "last": g["date"].max(),
        "monetary": g["amount"].sum(),
        "occasions": days.groupby("customer_id").size(),
    })
    out["recency_days"] = (end - out["last"]).dt.days
    out["frequency"] = out["occasions"] - 1
    out["t_x"] = (out["last"] - out["first"]).dt.days / 7.0
    out["T"] = (end - out["first"]).dt.days / 7.0
    for col, asc in (("recency_days", False), ("occasions", True), ("monetary", True)):
        out[col[0] + "_score"] = pd.qcut(out[col].rank(method="first", ascending=asc), 5,
                                         labels=[1, 2, 3, 4, 5]).astype(int)
    return out


def seasonal(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {
        "season": df.groupby("season", observed=True)["amount"].agg(["sum", "count", "mean"]),
        "month": df.groupby(df["date"].dt.to_period("M"))["amount"].agg(["sum", "count"]),
        "category_season": df.pivot_table(index="category", columns="season", values="amount",
                                          aggfunc="sum", observed=True),
    }


def bgnbd_negll(log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray,
                T: np.ndarray) -> float:
    r, alpha, a, b = np.exp(log_params)
    ln_a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    ln_a2 = betaln(a, b + x) - betaln(a, b)
    ln_a3 = -(r + x) * np.log(alpha + T)
    ln_a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-12))
                     - (r + x) * np.log(alpha + t_x), -np.inf)
    ll = ln_a1 + ln_a2 + np.logaddexp(ln_a3, np.where(x > 0, ln_a4, -np.inf))
    return -float(ll.sum())


def fit_bgnbd(r: pd.DataFrame) -> dict[str, float]:
    x = r["frequency"].to_numpy(float)
    t_x = r["t_x"].to_numpy(float)
    T = r["T"].to_numpy(float)
    res = minimize(bgnbd_negll, np.log([0.5, 5.0, 0.5, 2.0]), args=(x, t_x, T),
                   method="L-BFGS-B")
    return dict(zip(("r", "alpha", "a", "b"), np.exp(res.x).round(4).tolist(), strict=True))


def main(path: str) -> None:
    t = {}
    t0 = time.perf_counter()
    df = read(path)
    t["read"] = time.perf_counter() - t0
    rows_in = len(df)
    df = clean(df)
    t["clean"] = time.perf_counter() - t0 - sum(t.values())
    r = rfm(df)
    t["rfm"] = time.perf_counter() - t0 - sum(t.values())
    s = seasonal(df)
    t["seasonal"] = time.perf_counter() - t0 - sum(t.values())
    params = fit_bgnbd(r)
    t["bgnbd"] = time.perf_counter() - t0 - sum(t.values())
    print(json.dumps({"rows_in": rows_in, "rows_clean": len(df), "customers": len(r),
                      "seasons": len(s["season"]), "bgnbd": params,
                      "seconds": {k: round(v, 3) for k, v in t.items()}}))


if __name__ == "__main__":
    main(sys.argv[1])

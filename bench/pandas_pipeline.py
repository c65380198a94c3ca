"""The alternative a user would write: one pandas + SciPy script doing the core work of the
pipeline on a purchases CSV (Kaggle columns + ``Purchase Date``, as ``generate`` writes):
read, clean, RFM, seasonal aggregates, BG/NBD fit.

Written as a competent analyst would: the pyarrow CSV engine reading only the columns the
work needs, with explicit dtypes (categoricals for the low-cardinality text, parsed dates);
vectorised groupbys; RFM on purchase occasions (customer-days) scored 1-5 by the quintile
boundaries; and the standard BG/NBD log-likelihood (Fader, Hardie & Lee 2005), vectorised
and maximised with SciPy's L-BFGS-B on log parameters with numerical gradients, the usual
approach. No warehouse, no validation report, no lake, no model checks: it is the floor of
"what a notebook does", for the benchmark's pandas/ours ratio.

Its RFM score counts and seasonal totals are the same numbers as ours (the smoke test checks
it), so the comparison is of the same work.

    python bench/pandas_pipeline.py purchases.csv [--json PATH]   # prints a JSON summary
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln

#: file column → name here, for the columns the work needs
COLUMNS = {"Customer ID": "customer_id", "Age": "age", "Category": "category",
           "Purchase Amount (USD)": "amount", "Location": "state", "Season": "season",
           "Review Rating": "rating", "Purchase Date": "date"}
DTYPES = {"Customer ID": "string", "Age": "Int16", "Category": "category",
          "Purchase Amount (USD)": "float64", "Location": "category", "Season": "category",
          "Review Rating": "float64"}


def read(path: str) -> pd.DataFrame:
    df = pd.read_csv(path, engine="pyarrow", usecols=list(COLUMNS), dtype=DTYPES,
                     parse_dates=["Purchase Date"])
    return df.rename(columns=COLUMNS)


def clean(df: pd.DataFrame) -> pd.DataFrame:
    """The rows the warehouse would accept: an id, an amount within bounds, a date, and the
    optional age and rating within range when given."""
    ok = (df["customer_id"].notna() & df["amount"].between(0, 10_000_000)
          & df["date"].notna() & df["state"].notna()
          & (df["age"].isna() | df["age"].between(0, 120))
          & (df["rating"].isna() | df["rating"].between(1, 5)))
    return df[ok.fillna(False)]


def quintile_score(values: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """1-5: one plus the number of quintile boundaries the value exceeds (reversed when
    fewer is better)."""
    above = np.searchsorted(np.quantile(values, [0.2, 0.4, 0.6, 0.8]), values, side="left")
    return 1 + above if higher_is_better else 5 - above


def rfm(df: pd.DataFrame) -> pd.DataFrame:
    """Per customer, as of the last date in the data: recency (days since the last purchase),
    occasions (days with a purchase), monetary (total spend), their scores, and the
    BG/NBD inputs in weeks (repeat occasions, t_x, T)."""
    end = df["date"].max()
    days = df.groupby(["customer_id", "date"], observed=True, sort=False)["amount"].sum()
    g = days.reset_index().groupby("customer_id", observed=True, sort=False)
    out = g.agg(first=("date", "min"), last=("date", "max"), occasions=("date", "size"),
                monetary=("amount", "sum"))
    out["monetary"] = out["monetary"].round(2)
    out["recency_days"] = (end - out["last"]).dt.days
    out["r_score"] = quintile_score(out["recency_days"].to_numpy(float), higher_is_better=False)
    out["f_score"] = quintile_score(out["occasions"].to_numpy(float))
    out["m_score"] = quintile_score(out["monetary"].to_numpy(float))
    out["frequency"] = out["occasions"] - 1
    out["t_x"] = (out["last"] - out["first"]).dt.days / 7.0
    out["T"] = (end - out["first"]).dt.days / 7.0
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
    """Minus the BG/NBD log-likelihood, summed over customers."""
    r, alpha, a, b = np.exp(log_params)
    ln_a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    ln_a2 = betaln(a, b + x) - betaln(a, b)
    ln_a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    ln_a4 = np.full_like(x, -np.inf)
    ln_a4[repeat] = (np.log(a) - np.log(b + x[repeat] - 1)
                     - (r + x[repeat]) * np.log(alpha + t_x[repeat]))
    return -float((ln_a1 + ln_a2 + np.logaddexp(ln_a3, ln_a4)).sum())


def fit_bgnbd(r: pd.DataFrame) -> dict[str, float]:
    x = r["frequency"].to_numpy(float)
    t_x = r["t_x"].to_numpy(float)
    T = r["T"].to_numpy(float)
    res = minimize(bgnbd_negll, np.log([0.5, 5.0, 0.5, 2.0]), args=(x, t_x, T),
                   method="L-BFGS-B")
    return dict(zip(("r", "alpha", "a", "b"), np.exp(res.x).round(4).tolist(), strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--json", type=Path, help="also write the summary to this file")
    args = ap.parse_args()
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    df = read(args.csv)
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
    season = s["season"]
    summary = {
        "rows_in": rows_in, "rows_clean": len(df), "customers": len(r),
        "rfm_counts": {col: {str(k): int(v) for k, v in r[col].value_counts().sort_index().items()}
                       for col in ("r_score", "f_score", "m_score")},
        "season_totals": {str(k): {"revenue": round(float(season.loc[k, "sum"]), 2),
                                   "purchases": int(season.loc[k, "count"])}
                          for k in season.index},
        "bgnbd": params,
        "seconds": {k: round(v, 3) for k, v in t.items()},
    }
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

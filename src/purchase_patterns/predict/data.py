"""What the predict stage reads from the warehouse, through the :class:`DataStore`.

The per-customer calibration/holdout split is aggregated in SQL from the purchase lines
(``marts.fct_purchases``): several lines on one day are one purchase occasion (the BG/NBD
convention), and every count is relative to a cutoff date passed as a parameter. The SQL is
plain aggregates and ``case`` expressions, portable between DuckDB and BigQuery; day
differences are computed in pandas from the dates returned (one row per customer).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..capabilities import DataProfile
from ..datastore import BATCH_ROWS, DataStore

#: Days per week: BG/NBD times are in weeks, as in the papers.
DAYS_PER_WEEK = 7.0
#: Window for the "recent purchases" churn features, in days before the cutoff.
RECENT_DAYS = (90, 180)


@dataclass(frozen=True)
class Span:
    """First and last purchase date in the data."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days


def span(store: DataStore) -> Span:
    fct = store.relation("marts", "fct_purchases")
    sql = f"select min(purchase_date) as first_date, max(purchase_date) as last_date from {fct}"  # noqa: S608 - package-built relation name
    row = store.query(sql).iloc[0]
    return Span(pd.Timestamp(row["first_date"]).date(), pd.Timestamp(row["last_date"]).date())


def period_summary(store: DataStore, cutoff: date, holdout_end: date | None = None) -> pd.DataFrame:
    """One row per customer whose first purchase is on or before ``cutoff``.

    Columns: ``customer_id``, ``first_date``, ``last_date`` (last purchase on or before the
    cutoff), ``n_occasions``, ``n_lines``, ``spend``, ``repeat_spend`` (occasions after the
    first day), ``n_recent_90``/``n_recent_180`` (occasions in the last 90/180 days up to the
    cutoff), ``n_discount_lines``/``n_discount_known`` (lines with a discount / with the flag
    known), and for ``(cutoff, holdout_end]``: ``n_holdout`` and ``holdout_spend`` (zero when
    ``holdout_end`` is None). Nothing after the cutoff enters any other column.
    """
    return period_summaries(store, [(cutoff, holdout_end)])[0]


#: Per-customer count columns of a period summary, stored as int32 (a customer with more
#: than two billion purchase occasions is not a customer); money is float64, dates
#: datetime64. Compact types matter: at 20 million customers each column of a summary is
#: 80 MB as int32 and 160 MB as int64.
COUNT_COLUMNS = ("n_occasions", "n_lines", "n_recent_90", "n_recent_180", "n_discount_lines",
                 "n_discount_known", "n_holdout")
#: Rows per batch read from the warehouse by this module.
SUMMARY_BATCH_ROWS = BATCH_ROWS


def period_summaries(store: DataStore,
                     cutoffs: list[tuple[date, date | None]]) -> list[pd.DataFrame]:
    """:func:`period_summary` for each ``(cutoff, holdout_end)`` pair, from one pass over the
    purchase lines (the occasions are aggregated once for all of them).

    The result is read in batches and kept in compact columns (see :data:`COUNT_COLUMNS`), so
    memory holds one copy of the summaries, not the warehouse's result plus pandas' copy of it
    plus each period's slice."""
    fct = store.relation("marts", "fct_purchases")
    params: dict[str, Any] = {}
    columns = []
    names: list[list[str]] = []
    for k, (cutoff, holdout_end) in enumerate(cutoffs):
        c, h = f"@cutoff_{k}", f"@holdout_end_{k}"
        params[f"cutoff_{k}"] = cutoff
        upto = f"o.purchase_date <= {c}"
        exprs = {
            "last_date": f"max(case when {upto} then o.purchase_date end)",
            "n_occasions": f"count(case when {upto} then 1 end)",
            "n_lines": f"cast(sum(case when {upto} then o.n_lines else 0 end) as bigint)",
            "spend": f"sum(case when {upto} then o.spend else 0 end)",
            "repeat_spend": f"sum(case when {upto} and o.purchase_date > f.first_date "
                            "then o.spend else 0 end)",
        }
        for days in RECENT_DAYS:
            params[f"recent_{days}_{k}"] = cutoff - timedelta(days=days)
            exprs[f"n_recent_{days}"] = (f"count(case when o.purchase_date > @recent_{days}_{k} "
                                         f"and {upto} then 1 end)")
        exprs |= {
            "n_discount_lines": f"cast(sum(case when {upto} then o.n_discount_lines else 0 end) "
                                "as bigint)",
            "n_discount_known": f"cast(sum(case when {upto} then o.n_discount_known else 0 end) "
                                "as bigint)",
        }
        if holdout_end is not None:  # without a holdout both are zero: not worth a column
            params[f"holdout_end_{k}"] = holdout_end
            after = f"o.purchase_date > {c} and o.purchase_date <= {h}"
            exprs |= {"n_holdout": f"count(case when {after} then 1 end)",
                      "holdout_spend": f"sum(case when {after} then o.spend else 0 end)"}
        # one set of columns per cutoff: <name>_<k>
        columns += [f"{expr} as {name}_{k}" for name, expr in exprs.items()]
        names.append(list(exprs))
    params["latest_cutoff"] = max(c for c, _ in cutoffs)
    sql = f"""
        with occasions as (
            select customer_id, purchase_date,
                   count(*) as n_lines,
                   sum(amount) as spend,
                   sum(case when is_discount_applied then 1 else 0 end) as n_discount_lines,
                   count(is_discount_applied) as n_discount_known
            from {fct}
            where purchase_date is not null
            group by customer_id, purchase_date
        ),
        firsts as (
            select customer_id, min(purchase_date) as first_date
            from occasions
            group by customer_id
        )
        select o.customer_id, f.first_date, {", ".join(columns)}
        from occasions as o
        join firsts as f on f.customer_id = o.customer_id
        where f.first_date <= @latest_cutoff
        group by o.customer_id, f.first_date
        order by o.customer_id
    """  # noqa: S608 - package-built relation name; values are parameters
    parts: list[list[pd.DataFrame]] = [[] for _ in cutoffs]
    for batch in store.query_batches(sql, params, SUMMARY_BATCH_ROWS):
        first = pd.to_datetime(batch["first_date"]).to_numpy(dtype="datetime64[us]")
        ids = batch["customer_id"].astype(str).reset_index(drop=True)  # stays pandas text
        for k, (cutoff, holdout_end) in enumerate(cutoffs):
            keep = first <= np.datetime64(cutoff, "us")
            cols: dict[str, Any] = {"customer_id": ids, "first_date": first}
            for name in names[k]:
                col = batch[f"{name}_{k}"]
                cols[name] = (pd.to_datetime(col).to_numpy(dtype="datetime64[us]")
                              if name == "last_date" else col.to_numpy(dtype=_dtype(name)))
            if holdout_end is None:  # no holdout: both are zero
                cols |= {name: np.zeros(len(batch), dtype=_dtype(name))
                         for name in ("n_holdout", "holdout_spend")}
            part = pd.DataFrame(cols, copy=False)
            parts[k].append(part if bool(keep.all()) else part[keep])
        del batch
    return [_join(p) for p in parts]


def _dtype(name: str) -> type:
    return np.int32 if name in COUNT_COLUMNS else np.float64


def btyd_summary(frame: pd.DataFrame, cutoff: date) -> pd.DataFrame:
    """BG/NBD and Gamma-Gamma inputs from a :func:`period_summary` frame, times in weeks:
    ``x`` repeat occasions, ``t_x`` first to last purchase, ``T`` first purchase to the
    cutoff (the first purchase day is day 0; CDNOW convention), ``m`` mean repeat-occasion
    spend (NaN without repeats), ``mean_spend`` per occasion, and the holdout outcome
    ``n_holdout``, ``holdout_spend`` passed through."""
    end = pd.Timestamp(cutoff)
    x = (frame["n_occasions"] - 1).astype(np.float64)
    out = pd.DataFrame({
        "customer_id": frame["customer_id"],
        "x": x,
        "t_x": (frame["last_date"] - frame["first_date"]).dt.days / DAYS_PER_WEEK,
        "T": (end - frame["first_date"]).dt.days / DAYS_PER_WEEK,
        "m": np.where(x > 0, frame["repeat_spend"] / x.where(x > 0, 1.0), np.nan),
        "mean_spend": frame["spend"] / frame["n_occasions"],
        "n_holdout": frame["n_holdout"],
        "holdout_spend": frame["holdout_spend"],
    })
    return out


def btyd_counts(store: DataStore, profile: DataProfile,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The whole period's BG/NBD inputs, aggregated in the warehouse: ``(x, t_x, T, n)``, one
    entry per distinct ``(x, t_x, T)`` (weeks, as in :func:`btyd_summary` as of the last
    purchase date) and ``n`` the customers who share it, for ``bgnbd.fit(..., weights=n)``.

    Read from ``marts.customer_features`` (frequency, recency and T as of the end of the data,
    computed by the transform), so no purchase line is read: about a million rows instead of
    ten million at 10M lines. The same customers and values as ``btyd_summary(
    period_summary(store, last), last)`` when every line is dated (``profile.all_dated``, the
    store's :func:`~purchase_patterns.capabilities.profile`); None otherwise (the mart counts
    an undated line as an occasion of its own)."""
    if not profile.all_dated:
        return None
    cust = store.relation("marts", "customer_features")
    out = store.query(
        f"""select frequency as x, recency_days as t_x, t_days as t, count(*) as n
            from {cust}
            where first_purchase_date is not null
            group by frequency, recency_days, t_days"""  # noqa: S608 - package-built name
    )
    return (out["x"].to_numpy(dtype=np.float64),
            out["t_x"].to_numpy(dtype=np.float64) / DAYS_PER_WEEK,
            out["t"].to_numpy(dtype=np.float64) / DAYS_PER_WEEK,
            out["n"].to_numpy(dtype=np.float64))


def _join(batches: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Batches of one result (at least one, possibly empty) joined column by column, so that
    memory never holds two whole copies: each column is joined and its batches dropped in
    turn."""
    chunks: dict[str, list[pd.Series]] = {}
    for batch in batches:
        for col in batch.columns:
            chunks.setdefault(col, []).append(batch[col])
        del batch
    cols = {}
    for col in list(chunks):
        pieces = chunks.pop(col)
        cols[col] = (pieces[0].reset_index(drop=True) if len(pieces) == 1
                     else pd.concat(pieces, ignore_index=True))
        del pieces
    return pd.DataFrame(cols, copy=False)


def _read(store: DataStore, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """A per-customer query result read in batches (:func:`_join`): memory never holds the
    warehouse's whole result and pandas' whole copy of it at once."""
    return _join(store.query_batches(sql, params, SUMMARY_BATCH_ROWS))


def customer_ids(store: DataStore) -> pd.Series:
    """Every customer in ``marts.customer_features`` (the grain of the predictions table)."""
    cust = store.relation("marts", "customer_features")
    ids = _read(store, f"select customer_id from {cust} order by customer_id")  # noqa: S608
    return ids["customer_id"].astype(str)


def snapshot_features(store: DataStore) -> pd.DataFrame:
    """Per-customer features for snapshot models (heuristic CLV, propensity): the customer
    feature mart plus discount, promotion and rating shares over the customer's lines."""
    cust = store.relation("marts", "customer_features")
    fct = store.relation("marts", "fct_purchases")
    out = _read(
        store,
        f"""with lines as (
                select customer_id,
                       avg(case when is_discount_applied then 1.0
                                when not is_discount_applied then 0.0 end) as discount_share,
                       avg(case when is_promo_code_used then 1.0
                                when not is_promo_code_used then 0.0 end) as promo_share,
                       avg(review_rating) as avg_review_rating
                from {fct}
                group by customer_id
            )
            select c.customer_id, c.monetary_value, c.total_spend, c.n_purchases,
                   c.stated_purchase_frequency, c.stated_purchases_per_year,
                   c.stated_previous_purchases, c.has_subscription,
                   c.preferred_payment_method, c.age, c.gender, c.census_region,
                   l.discount_share, l.promo_share, l.avg_review_rating
            from {cust} as c
            left join lines as l on l.customer_id = c.customer_id
            order by c.customer_id"""  # noqa: S608
    )
    out["customer_id"] = out["customer_id"].astype(str)
    return out

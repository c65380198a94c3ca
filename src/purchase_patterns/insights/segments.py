"""Customer segments: RFM on dated data, stated frequency x spend on snapshot data, and the
summary of any per-customer grouping (segment or cluster) over the purchases in scope.

**RFM (dated data).** Per customer, as of the last date in the data: recency = days since
the last purchase, frequency = purchase occasions (days with a purchase), monetary = total
spend. Each becomes a score 1-5 by four cut points (``insights.rfm.*``; default: the
quintile boundaries of the customers' values). A value at or below the first cut scores 1
(recency: 5, since fewer days is better), above the last cut 5. When many customers share a
value (most CDNOW customers bought once) quintile boundaries coincide and some scores stay
empty rather than splitting equal customers at random. The ten named segments are the
common R x F map (monetary is scored and kept, but does not name the segment):

=====================  =========  =========
segment                R scores   F scores
=====================  =========  =========
Champions              5          4-5
Loyal Customers        3-4        4-5
Potential Loyalists    4-5        2-3
New Customers          5          1
Promising              4          1
Need Attention         3          3
About to Sleep         3          1-2
At Risk                1-2        3-4
Can't Lose Them        1-2        5
Hibernating            1-2        1-2
=====================  =========  =========

**Snapshot data** (one purchase per customer, no dates: recency does not exist). Frequency
score = the mean, rounded half up, of the quintile score of stated previous purchases and
the stated cadence score (Annually 1, Quarterly or every 3 months 2, Monthly 3, Fortnightly
or bi-weekly 4, Weekly 5); spend score = quintile score of the customer's spend. Tiers:
scores 1-2 Occasional / low spend, 3 Regular / mid spend, 4-5 Frequent / high spend, giving
nine segments named "Frequent, high spend" and so on (scheme
``snapshot_frequency_monetary``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from .context import Context

SCHEME_RFM = "rfm"
SCHEME_SNAPSHOT = "snapshot_frequency_monetary"


@dataclass(frozen=True)
class RfSegment:
    name: str
    r: tuple[int, ...]
    f: tuple[int, ...]
    meaning: str

    @property
    def rule(self) -> str:
        def span(v: tuple[int, ...]) -> str:
            return str(v[0]) if len(v) == 1 else f"{v[0]}-{v[-1]}"

        return f"R {span(self.r)}, F {span(self.f)}"


RF_SEGMENTS: tuple[RfSegment, ...] = (
    RfSegment("Champions", (5,), (4, 5), "bought very recently and buy often"),
    RfSegment("Loyal Customers", (3, 4), (4, 5), "buy often and bought fairly recently"),
    RfSegment("Potential Loyalists", (4, 5), (2, 3), "recent customers with a few purchases"),
    RfSegment("New Customers", (5,), (1,), "bought very recently, but only once or rarely"),
    RfSegment("Promising", (4,), (1,), "bought recently, but rarely"),
    RfSegment("Need Attention", (3,), (3,), "average recency and frequency"),
    RfSegment("About to Sleep", (3,), (1, 2), "average recency, low frequency"),
    RfSegment("At Risk", (1, 2), (3, 4), "bought often, but not for a long time"),
    RfSegment("Can't Lose Them", (1, 2), (5,), "were among the most frequent buyers, but not "
              "for a long time"),
    RfSegment("Hibernating", (1, 2), (1, 2), "bought rarely, and long ago"),
)

_F_TIERS = ((1, 2, "Occasional"), (3, 3, "Regular"), (4, 5, "Frequent"))
_M_TIERS = ((1, 2, "low spend"), (3, 3, "mid spend"), (4, 5, "high spend"))
SNAPSHOT_SEGMENTS: tuple[str, ...] = tuple(
    f"{f}, {m}" for *_f, f in reversed(_F_TIERS) for *_m, m in reversed(_M_TIERS))
#: Stated purchases per year → cadence score (upper bound of each score).
_CADENCE_SCORE = ((1.0, 1), (4.0, 2), (12.0, 3), (26.0, 4), (float("inf"), 5))


def segment_order(scheme: str) -> list[str]:
    return [s.name for s in RF_SEGMENTS] if scheme == SCHEME_RFM else list(SNAPSHOT_SEGMENTS)


def cut_points(values: pd.Series, configured: list[float] | None) -> list[float]:
    """The four cut points: configured, or the quintile boundaries of ``values``."""
    if configured is not None:
        return [float(c) for c in configured]
    return [float(q) for q in np.quantile(values.dropna().astype(float), [0.2, 0.4, 0.6, 0.8])]


def score(values: pd.Series, cuts: list[float], *, higher_is_better: bool = True) -> pd.Series:
    """1-5: one plus the number of cut points the value exceeds (reversed for recency)."""
    above = (values.to_numpy(dtype=float)[:, None] > np.asarray(cuts)[None, :]).sum(axis=1)
    out = 1 + above if higher_is_better else 5 - above
    return pd.Series(out, index=values.index).where(values.notna()).astype("Int64")


def rf_segment(r: int, f: int) -> str:
    for seg in RF_SEGMENTS:
        if r in seg.r and f in seg.f:
            return seg.name
    raise ValueError(f"no segment for R={r}, F={f}")  # the map covers all 25 cells


#: RF segment of every (R, F) score pair: ``_RF_GRID[r - 1, f - 1]``
_RF_GRID = np.array([[rf_segment(r, f) for f in range(1, 6)] for r in range(1, 6)], dtype=object)


def rf_segments(r: pd.Series, f: pd.Series) -> pd.Series:
    """:func:`rf_segment` of every customer at once (a lookup in the 5 x 5 grid)."""
    return pd.Series(_RF_GRID[r.to_numpy(dtype=np.int64) - 1, f.to_numpy(dtype=np.int64) - 1],
                     index=r.index, dtype=object)


def load_customers(ctx: Context) -> pd.DataFrame:
    """One row per customer from ``marts.customer_features`` (all customers: segments and
    clusters are assigned on the whole population, whatever the report filters)."""
    return ctx.query(
        "select customer_id, n_purchase_occasions, days_since_last_purchase, t_days, "  # noqa: S608
        "total_spend, monetary_value, n_purchases, stated_previous_purchases, "
        "stated_purchases_per_year, has_subscription "
        f"from {ctx.store.relation('marts', 'customer_features')}")  # noqa: S608


def rfm_segments(ctx: Context, customers: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-customer RFM scores and segments, and the cut points used. Customers without
    dated purchases (a snapshot file loaded beside a dated log) have no recency: left out."""
    cfg = ctx.cfg.rfm
    customers = customers[customers["days_since_last_purchase"].notna()]
    rec = customers["days_since_last_purchase"].astype(float)
    freq = customers["n_purchase_occasions"].astype(float)
    mon = customers["total_spend"].astype(float)
    cuts = {"recency_days": cut_points(rec, cfg.recency_cut_days),
            "frequency": cut_points(freq, cfg.frequency_cuts),
            "monetary": cut_points(mon, cfg.monetary_cuts)}
    out = pd.DataFrame({
        "customer_id": customers["customer_id"], "scheme": SCHEME_RFM,
        "r_score": score(rec, cuts["recency_days"], higher_is_better=False),
        "f_score": score(freq, cuts["frequency"]), "m_score": score(mon, cuts["monetary"]),
        "recency_days": rec, "frequency": freq, "monetary": mon,
    })
    out["segment"] = rf_segments(out["r_score"], out["f_score"])
    source = "configured" if any(getattr(cfg, k) for k in
                                 ("recency_cut_days", "frequency_cuts", "monetary_cuts")) \
        else "quintiles"
    return out, {"cuts": cuts, "source": source}


def _cadence_score(per_year: pd.Series) -> pd.Series:
    bounds = [b for b, _ in _CADENCE_SCORE]
    idx = np.searchsorted(bounds, per_year.fillna(0).to_numpy(dtype=float), side="left")
    return pd.Series(np.asarray([s for _, s in _CADENCE_SCORE])[np.minimum(idx, 4)],
                     index=per_year.index).where(per_year.notna()).astype("Int64")


def _tier(scores: pd.Series, tiers: tuple[tuple[int, int, str], ...]) -> pd.Series:
    return scores.map(lambda s: next(name for lo, hi, name in tiers if lo <= s <= hi))


def snapshot_segments(ctx: Context,
                      customers: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-customer stated-frequency x spend scores and segments (no recency)."""
    prev = customers["stated_previous_purchases"].astype(float)
    per_year = customers["stated_purchases_per_year"].astype(float)
    mon = customers["total_spend"].astype(float)
    cuts = {"previous_purchases": cut_points(prev, None) if prev.notna().any() else None,
            "monetary": cut_points(mon, None)}
    prev_score = score(prev, cuts["previous_purchases"]) if cuts["previous_purchases"] \
        else pd.Series(pd.NA, index=prev.index, dtype="Int64")
    cad_score = _cadence_score(per_year)
    both = pd.concat([prev_score.astype(float), cad_score.astype(float)], axis=1)
    f_score = np.floor(both.mean(axis=1, skipna=True) + 0.5)
    m_score = score(mon, cuts["monetary"])
    out = pd.DataFrame({
        "customer_id": customers["customer_id"], "scheme": SCHEME_SNAPSHOT,
        "r_score": pd.Series(pd.NA, index=customers.index, dtype="Int64"),
        "f_score": f_score.astype("Int64"), "m_score": m_score,
        "recency_days": np.nan, "frequency": prev, "monetary": mon,
    })
    out = out[out["f_score"].notna()]
    out["segment"] = (_tier(out["f_score"], _F_TIERS) + ", "
                      + _tier(out["m_score"], _M_TIERS))
    return out, {"cuts": cuts, "source": "quintiles",
                 "cadence_scores": {"Annually": 1, "Quarterly / Every 3 Months": 2,
                                    "Monthly": 3, "Fortnightly / Bi-Weekly": 4, "Weekly": 5}}


def describe_segment(scheme: str, name: str) -> tuple[str, str]:
    """(description, rule) of a segment in plain words."""
    if scheme == SCHEME_RFM:
        seg = next(s for s in RF_SEGMENTS if s.name == name)
        return f"{name}: {seg.meaning}.", seg.rule
    f_tier, m_tier = name.split(", ")
    f_rng = next(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi, t in _F_TIERS if t == f_tier)
    m_rng = next(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi, t in _M_TIERS if t == m_tier)
    return (f"{f_tier} buyers by their stated history and cadence, {m_tier} per purchase "
            "(stated frequency x spend; not RFM: the data has no dates)",
            f"freq. {f_rng} · spend {m_rng}")


def assign(ctx: Context, customers: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-customer segments by the scheme the data supports (empty frame when neither)."""
    if ctx.gate("rfm_segments"):
        seg, info = rfm_segments(ctx, customers)
        cuts = info["cuts"]
        ctx.record("rfm_segments", True, (
            f"{len(seg):,} customers scored; cut points ({info['source']}): recency days "
            f"{_fmt(cuts['recency_days'])}, occasions {_fmt(cuts['frequency'])}, spend "
            f"{_fmt(cuts['monetary'])}"))
        ctx.record("snapshot_segments", False, ctx.supported("snapshot_segments").reason)
        return seg, {"scheme": SCHEME_RFM, **info}
    if ctx.gate("snapshot_segments"):
        seg, info = snapshot_segments(ctx, customers)
        ctx.record("snapshot_segments", True, (
            f"{len(seg):,} customers scored by stated frequency x spend (no recency: the "
            "data has no dates)"))
        return seg, {"scheme": SCHEME_SNAPSHOT, **info}
    return pd.DataFrame(), {"scheme": None}


def _fmt(cuts: list[float] | None) -> str:
    return "n/a" if not cuts else " / ".join(f"{c:,.4g}" for c in cuts)


# -- summaries over the purchases in scope ------------------------------------------------------


def group_summary(ctx: Context, column: str) -> pd.DataFrame:
    """Customers, purchases and revenue per value of ``s.<column>`` (segment or cluster
    label) over the purchase lines in scope, with each group's shares of the total."""
    lines, params = ctx.lines(with_segments=True)
    recent = "null"
    if ctx.profile.dated and ctx.profile.last_date:
        # revenue of the last twelve months of data: what currently flows from the group
        params = {**params, "recent_from": ctx.profile.last_date - timedelta(days=365)}
        recent = "sum(case when f.purchase_date > @recent_from then f.amount else 0 end)"
    out = ctx.query(
        f"select s.scheme, s.{column} as grp, count(distinct f.customer_id) as customers, "  # noqa: S608
        f"count(*) as purchases, sum(f.amount) as revenue, {recent} as revenue_last_12_months "
        f"from {lines} group by 1, 2", params)
    for col in ("revenue", "revenue_last_12_months"):
        out[col] = out[col].astype(float)
    total_rev, total_cust = out["revenue"].sum(), out["customers"].sum()
    out["revenue_share"] = out["revenue"] / total_rev if total_rev else np.nan
    out["customer_share"] = out["customers"] / total_cust if total_cust else np.nan
    return out


def customer_averages(ctx: Context, column: str) -> pd.DataFrame:
    """Mean recency, frequency and monetary value of the customers in scope, by group; and
    mean and total CLV when the predict stage's table exists."""
    segs = ctx.store.relation("analytics", "customer_segments")
    params: dict[str, Any] = {}
    scope = ""
    if ctx.filters:
        lines, params = ctx.lines(with_segments=ctx.filters.needs_segments)
        scope = f" where s.customer_id in (select f.customer_id from {lines})"  # noqa: S608
    out = ctx.query(
        f"select s.{column} as grp, avg(s.recency_days) as avg_recency_days, "  # noqa: S608
        f"avg(s.frequency) as avg_frequency, avg(s.monetary) as avg_monetary "
        f"from {segs} as s{scope} group by 1", params)
    if ctx.has("analytics", "customer_predictions"):
        preds = ctx.store.relation("analytics", "customer_predictions")
        clv = ctx.query(
            f"select s.{column} as grp, avg(cp.clv) as avg_clv, sum(cp.clv) as total_clv "  # noqa: S608
            f"from {segs} as s join {preds} as cp on cp.customer_id = s.customer_id{scope} "
            "group by 1", params)
        out = out.merge(clv, on="grp", how="left")
    return out


def summary(ctx: Context) -> pd.DataFrame:
    """``segment_summary`` for the purchases in scope (needs ``analytics.customer_segments``)."""
    base = group_summary(ctx, "segment")
    if base.empty:
        return pd.DataFrame()
    out = base.merge(customer_averages(ctx, "segment"), on="grp", how="left")
    scheme = str(out["scheme"].iloc[0])
    order = {name: i for i, name in enumerate(segment_order(scheme))}
    out = out.rename(columns={"grp": "segment"})
    described = [describe_segment(scheme, s) for s in out["segment"]]
    out["description"] = [d for d, _ in described]
    out["rule"] = [r for _, r in described]
    out["segment_order"] = out["segment"].map(order)
    return out.sort_values("segment_order").reset_index(drop=True)

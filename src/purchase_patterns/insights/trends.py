"""Trends: revenue by season and, on dated data, by calendar month, ISO week and weekday;
peak periods; growth; and product preferences by season, segment, age band, gender and
region.

Series are aggregated in SQL over the purchase lines in scope; peaks and growth are computed
in pandas on those (small) aggregates. How peaks are found, stated in every row's
``peak_method``:

- **month / week**: the trend is the centred moving average over a year (2x12 months,
  2x52 weeks), carried flat to the ends of the series where the window does not fit; with
  less than two years of data there is no separating trend from season, and the trend is the
  median period. ``index`` = revenue / trend. A period is a **peak** when its index is at
  least ``1 + insights.peak_threshold`` *and* it stands out among all periods' indices
  (robust z-score >= 2, median and MAD), so ordinary noise between weeks is not a peak.
- **month_of_year** (two years or more of data): the seasonal index of a calendar month is
  the mean, over the years, of its index to the centred moving average (classical
  ratio-to-moving-average decomposition). Peaks are local maxima of this circular profile
  with a prominence of at least ``insights.peak_prominence`` (``scipy.signal.find_peaks``);
  the **peak period** is the run of months around a peak whose index stays above half its
  prominence. This finds a summer bump even when it is below the annual mean.
- **season**: revenue per day of the season covered by the data (revenue on snapshot data,
  where seasons are counted, not dated), relative to the average season; a peak when at
  least ``1 + insights.peak_threshold``. On dated data spanning less than two years no
  season is called a peak: its level mixes season and trend (a young business grows through
  every season).
- **weekday**: revenue relative to the average weekday; a peak when at least
  ``1 + insights.peak_threshold``.

Growth (``growth_vs_previous``, ``growth_vs_year_ago`` on month rows, and
:func:`growth_summary`): the latest twelve months (fewer when the data spans less than two
years) against the same months a year earlier; without a year of history, the slope of a
least-squares line through monthly revenue, relative to the mean month.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from .context import Context
from .segments import segment_order

SEASON_ORDER = {"Winter": 1, "Spring": 2, "Summer": 3, "Fall": 4}
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
               "Dec")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ROBUST_Z = 2.0
#: dated data needs two years before a season or calendar month can be called a peak
MIN_DAYS_SEASONALITY = 730


#: The mart that already holds a series over all purchase lines, its period column, and the
#: rows that are not a period (the season mart puts lines without a season under "Unknown",
#: which the SQL path leaves out): the transform computed revenue, lines and distinct
#: customers per period, so without filters a series is read from a few rows instead of
#: re-aggregating every line (seconds at 10M).
_MARTS = {"f.season": ("agg_sales_by_season", "season", " where season <> 'Unknown'"),
          "f.purchase_month": ("agg_sales_by_month", "purchase_month", ""),
          "f.purchase_week": ("agg_sales_by_week", "week_start", ""),
          "f.purchase_day_of_week": ("agg_sales_by_weekday", "day_of_week", "")}


def _from_mart(ctx: Context, expr: str, dated_only: bool) -> pd.DataFrame | None:
    """The series from its ``agg_sales_by_*`` mart when that is the same answer: no filters,
    and every line dated when only dated lines count (the season mart counts undated lines)."""
    if expr not in _MARTS or ctx.filters or (dated_only and not ctx.profile.all_dated):
        return None
    table, key, not_a_period = _MARTS[expr]
    if not ctx.has("marts", table):
        return None
    rel = ctx.store.relation("marts", table)
    return ctx.query(
        f"select {key} as period_key, revenue, n_purchases as purchases, "  # noqa: S608
        f"n_customers as customers from {rel}{not_a_period}")


def _series(ctx: Context, expr: str, dated_only: bool) -> pd.DataFrame:
    out = _from_mart(ctx, expr, dated_only)
    if out is None:
        lines, params = ctx.lines()
        cond = " and f.purchase_date is not null" if dated_only else ""
        out = ctx.query(
            f"select {expr} as period_key, sum(f.amount) as revenue, count(*) as purchases, "  # noqa: S608
            f"count(distinct f.customer_id) as customers from {lines}{cond} group by 1", params)
    out["revenue"] = out["revenue"].astype(float)
    return out[out["period_key"].notna()]


def _season_of_month(month: int) -> str:
    return ("Winter", "Spring", "Summer", "Fall")[(month % 12) // 3]


def _season_days(first: date, last: date) -> dict[str, int]:
    days = pd.date_range(first, last, freq="D")
    return pd.Series([_season_of_month(m) for m in days.month]).value_counts().to_dict()


def _robust_z(x: pd.Series) -> pd.Series:
    med = x.median()
    mad = (x - med).abs().median() * 1.4826
    return (x - med) / mad if mad > 0 else pd.Series(0.0, index=x.index)


def seasons(ctx: Context, span: tuple[date, date] | None) -> pd.DataFrame:
    thr = ctx.cfg.peak_threshold
    # per day of season on dated data: undated lines (a snapshot loaded beside) cannot count
    out = _series(ctx, "f.season", dated_only=span is not None)
    if out.empty:
        return out
    if span:
        days = _season_days(*span)
        out["per_unit"] = out["revenue"] / out["period_key"].map(days).astype(float)
        basis = "revenue per day of the season covered by the data"
        mean = out["revenue"].sum() / sum(days.get(s, 0) for s in out["period_key"])
    else:
        out["per_unit"] = out["revenue"]
        basis = "revenue (seasons counted, not dated)"
        mean = out["revenue"].mean()
    out["index"] = out["per_unit"] / mean
    out["is_peak"] = out["index"] >= 1 + thr
    out["peak_method"] = (f"{basis} relative to the average season; peak when at least "
                          f"{thr:.0%} above")
    if out["purchases"].min() < ctx.cfg.min_group_size:
        out["is_peak"] = False
        out["peak_method"] = (f"{basis} relative to the average season; peaks not assessed: "
                              f"a season has fewer than {ctx.cfg.min_group_size} purchases")
    elif span and (span[1] - span[0]).days < MIN_DAYS_SEASONALITY:
        # with less than two years of dates a season's level mixes season and trend
        out["is_peak"] = False
        out["peak_method"] = (f"{basis} relative to the average season; peaks not assessed: "
                              "less than two years of dates, so season and trend cannot be "
                              "separated")
    return out.assign(grain="season", period=out["period_key"],
                      period_order=out["period_key"].map(SEASON_ORDER))


def _trend(revenue: pd.Series, window: int) -> tuple[pd.Series, str]:
    if len(revenue) >= 2 * window:
        ma = revenue.rolling(window, center=True).mean()
        # centred 2 x window average (window even): mean of two adjacent window averages
        centred = (ma + ma.shift(-1)) / 2
        return centred.ffill().bfill(), (
            f"centred 2x{window} moving average (carried flat at the ends)")
    return pd.Series(revenue.median(), index=revenue.index), (
        f"median period (fewer than {2 * window} periods: trend and season cannot be separated)")


def calendar(ctx: Context, grain: str) -> pd.DataFrame:
    """Month or week rows over the full date range (periods without purchases are 0)."""
    thr = ctx.cfg.peak_threshold
    col, window, freq = {"month": ("f.purchase_month", 12, "MS"),
                         "week": ("f.purchase_week", 52, "W-MON")}[grain]
    raw = _series(ctx, col, dated_only=True)
    if raw.empty:
        return raw
    raw["period_start"] = pd.to_datetime(raw["period_key"])
    full = pd.date_range(raw["period_start"].min(), raw["period_start"].max(), freq=freq)
    out = (raw.set_index("period_start").reindex(full)
           .fillna({"revenue": 0.0, "purchases": 0, "customers": 0}))
    out.index.name = "period_start"
    out = out.reset_index()
    trend, how = _trend(out["revenue"], window)
    out["trend"] = trend
    out["index"] = out["revenue"] / trend.where(trend > 0)
    out["is_peak"] = (out["index"] >= 1 + thr) & (_robust_z(out["index"]) >= ROBUST_Z)
    out["peak_method"] = (f"revenue / trend ({how}); peak when at least {thr:.0%} above the "
                          f"trend and a robust outlier (z >= {ROBUST_Z:g})")
    lag = 12 if grain == "month" else 52
    out["growth_vs_previous"] = out["revenue"] / out["revenue"].shift(1).where(
        lambda s: s > 0) - 1
    out["growth_vs_year_ago"] = out["revenue"] / out["revenue"].shift(lag).where(
        lambda s: s > 0) - 1
    fmt = "%Y-%m" if grain == "month" else "%G-W%V"
    return out.assign(grain=grain, period=out["period_start"].dt.strftime(fmt),
                      period_order=range(len(out)))


def month_of_year(ctx: Context, months: pd.DataFrame) -> pd.DataFrame:
    """Seasonal index per calendar month and the peak periods (needs two years of months)."""
    if len(months) < 24:
        return pd.DataFrame()
    ma = months["revenue"].rolling(12, center=True).mean()
    centred = (ma + ma.shift(-1)) / 2
    ratio = months["revenue"] / centred.where(centred > 0)
    moy = months["period_start"].dt.month
    prof = ratio.groupby(moy).mean().reindex(range(1, 13))
    if prof.isna().any():
        return pd.DataFrame()
    totals = months.groupby(moy)[["revenue", "purchases", "customers"]].sum().reindex(range(1, 13))
    peak_months = peak_periods(prof.to_numpy(), ctx.cfg.peak_prominence)
    in_peak = {m for p in peak_months for m in p["months"]}
    out = pd.DataFrame({
        "grain": "month_of_year", "period": MONTH_NAMES, "period_order": range(1, 13),
        "revenue": totals["revenue"].to_numpy(), "purchases": totals["purchases"].to_numpy(),
        "customers": totals["customers"].to_numpy(), "index": prof.to_numpy(),
        "is_peak": [m in in_peak for m in range(1, 13)],
        "peak_method": (f"seasonal index (ratio to the centred 2x12 moving average, averaged "
                        f"over {ratio.notna().sum() / 12:.3g} years of ratios); peaks of prominence >= "
                        f"{ctx.cfg.peak_prominence:g} (scipy find_peaks, circular), period = "
                        "months within half the prominence of the peak"),
    })
    return out


def peak_periods(profile: np.ndarray, prominence: float) -> list[dict[str, Any]]:
    """Peaks of a circular 12-month profile: month (1-12), index, prominence, and the
    months of the peak period (contiguous, index above the half-prominence line)."""
    from scipy.signal import find_peaks  # imported here: scipy.signal takes seconds to load

    tiled = np.tile(profile, 3)
    idx, props = find_peaks(tiled, prominence=prominence)
    out = []
    for i, prom in zip(idx, props["prominences"], strict=True):
        if not 12 <= i < 24:
            continue
        line = tiled[i] - prom / 2
        lo, hi = i, i
        while lo - 1 > i - 12 and tiled[lo - 1] >= line:
            lo -= 1
        while hi + 1 < i + 12 and tiled[hi + 1] >= line:
            hi += 1
        months = [(j % 12) + 1 for j in range(lo, hi + 1)]
        out.append({"month": (i % 12) + 1, "index": float(tiled[i]),
                    "prominence": float(prom), "months": months})
    return sorted(out, key=lambda p: -p["prominence"])


def weekdays(ctx: Context) -> pd.DataFrame:
    thr = ctx.cfg.peak_threshold
    out = _series(ctx, "f.purchase_day_of_week", dated_only=True)
    if out.empty:
        return out
    out["period_order"] = out["period_key"].astype(int)
    out["index"] = out["revenue"] / out["revenue"].mean()
    out["is_peak"] = out["index"] >= 1 + thr
    out["peak_method"] = (f"revenue relative to the average weekday; peak when at least "
                          f"{thr:.0%} above")
    if out["purchases"].min() < ctx.cfg.min_group_size:
        out["is_peak"] = False
        out["peak_method"] = ("revenue relative to the average weekday; peaks not assessed: a "
                              f"weekday has fewer than {ctx.cfg.min_group_size} purchases")
    return out.assign(grain="weekday",
                      period=[WEEKDAY_NAMES[d - 1] for d in out["period_order"]])


def growth_summary(months: pd.DataFrame) -> dict[str, Any] | None:
    """Latest months against the same months a year earlier (or the monthly slope)."""
    months = months.sort_values("period_start").reset_index(drop=True)
    if len(months) < 3:
        return None
    n = len(months)
    if n >= 13:
        k = min(12, n - 12)
        recent = months.iloc[n - k:]
        before = months.iloc[n - k - 12:n - 12]
        prev = float(before["revenue"].sum())
        return {"method": "year_over_year", "months": k,
                "from": recent["period"].iloc[0], "to": recent["period"].iloc[-1],
                "revenue": float(recent["revenue"].sum()), "revenue_year_before": prev,
                "growth": float(recent["revenue"].sum()) / prev - 1 if prev > 0 else None,
                "text": (f"revenue in the latest {k} months ({recent['period'].iloc[0]} to "
                         f"{recent['period'].iloc[-1]}) against the same months a year "
                         "earlier")}
    x = np.arange(n, dtype=float)
    slope = float(np.polyfit(x, months["revenue"].to_numpy(dtype=float), 1)[0])
    mean = float(months["revenue"].mean())
    return {"method": "monthly_slope", "months": n, "from": months["period"].iloc[0],
            "to": months["period"].iloc[-1], "growth": slope / mean if mean else None,
            "text": "least-squares slope of monthly revenue, per month, relative to the mean "
                    "month (less than a year of history)"}


def periods(ctx: Context) -> pd.DataFrame:
    """``trend_periods``: season, month, week, weekday and month_of_year rows."""
    frames = []
    span = ctx.span()
    if ctx.gate("seasonal_trends"):
        s = seasons(ctx, span)
        frames.append(s)
        peaks = ", ".join(s.loc[s["is_peak"], "period"]) or "none"
        ctx.record("seasonal_trends", not s.empty, f"{len(s)} seasons; peak seasons: {peaks}")
    if ctx.gate("calendar_trends"):
        months = calendar(ctx, "month")
        weeks = calendar(ctx, "week")
        days = weekdays(ctx)
        moy = month_of_year(ctx, months) if not months.empty else pd.DataFrame()
        frames += [months, weeks, days, moy]
        peak_words = ", ".join(moy.loc[moy["is_peak"], "period"]) if not moy.empty else \
            "not estimated (needs 24 months)"
        ctx.record("calendar_trends", not months.empty,
                   f"{len(months)} months, {len(weeks)} weeks; seasonal peak months: "
                   f"{peak_words}")
        if ctx.gate("growth"):
            g = growth_summary(months) if not months.empty else None
            ctx.record("growth", g is not None and g.get("growth") is not None,
                       f"{g['growth']:+.1%}: {g['text']}" if g and g.get("growth") is not None
                       else "too few months in scope")
    else:
        ctx.record("growth", False, ctx.supported("growth").reason)
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


# -- product preferences ------------------------------------------------------------------------

#: dimension → (SQL, needs segments, capability)
PREFERENCE_DIMENSIONS: dict[str, tuple[str, bool, str | None]] = {
    "season": ("f.season", False, "seasonal_trends"),
    "segment": ("s.segment", True, None),
    "age_band": ("nullif(c.age_band, 'Unknown')", False, None),
    "gender": ("c.gender", False, None),
    "census_region": ("c.census_region", False, "geography"),
}


def preferences(ctx: Context, have_segments: bool) -> pd.DataFrame:
    """Category and item revenue shares within each value of a dimension, and their index
    against the overall share (1.25 = a quarter more than across all purchases)."""
    if not ctx.profile.has_category:
        ctx.record("preferences", False, "no product categories in the data")
        return pd.DataFrame()
    frames = []
    for dim, (expr, needs_seg, cap) in PREFERENCE_DIMENSIONS.items():
        if (needs_seg and not have_segments) or (cap and not ctx.supported(cap).supported):
            continue
        lines, params = ctx.lines(with_segments=needs_seg)
        raw = ctx.query(
            f"select {expr} as value, p.category_name, p.item_name, sum(f.amount) as revenue, "  # noqa: S608
            f"count(*) as purchases from {lines} and not p.is_unknown_product "
            "group by 1, 2, 3", params)
        raw = raw[raw["value"].notna()]
        if raw.empty or raw["value"].nunique() < 2:
            continue
        raw["revenue"] = raw["revenue"].astype(float)
        for level in ("category", "item"):
            keys = ["category_name"] if level == "category" else ["category_name", "item_name"]
            g = raw.groupby(["value", *keys], as_index=False)[["revenue", "purchases"]].sum()
            within = g.groupby("value")["revenue"].transform("sum")
            g["share_within_value"] = g["revenue"] / within
            overall = g.groupby(keys)["revenue"].transform("sum") / g["revenue"].sum()
            g["index_vs_overall"] = g["share_within_value"] / overall
            if level == "category":
                g["item_name"] = None
            frames.append(g.assign(dimension=dim))
    if not frames:
        ctx.record("preferences", False, "no dimension with two or more values")
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    order = {**SEASON_ORDER, **{s: i for i, s in enumerate(segment_order("rfm"))}}
    out["_o"] = out["value"].map(order).fillna(99)
    out = out.sort_values(["dimension", "_o", "value", "item_name", "revenue"],
                          ascending=[True, True, True, True, False], na_position="first")
    ctx.record("preferences", True, "category and item shares by " +
               ", ".join(out["dimension"].unique()))
    return out.drop(columns="_o").reset_index(drop=True)


def by_state(ctx: Context) -> pd.DataFrame:
    """Revenue, purchases and customers per customer state (for the report's geography)."""
    lines, params = ctx.lines()
    out = ctx.query(
        "select c.state_name as state, c.census_region, sum(f.amount) as revenue, "  # noqa: S608
        "count(*) as purchases, count(distinct f.customer_id) as customers "
        f"from {lines} and c.state_name is not null group by 1, 2", params)
    out["revenue"] = out["revenue"].astype(float)
    return out.sort_values("revenue", ascending=False).reset_index(drop=True)


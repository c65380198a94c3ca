"""The report's figures: matplotlib (Agg backend, no display needed) drawn from the insight
tables and returned as base64 PNG, so that the HTML report is one self-contained file.

Every function takes frames and returns ``None`` when there is nothing to draw, so that the
report leaves the figure out rather than showing an empty chart.
"""

from __future__ import annotations

import base64
import io
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import FuncFormatter, PercentFormatter  # noqa: E402

DPI = 120
WIDTH = 8.0
BLUE, ORANGE, GREY, RED = "#2b6cb0", "#dd6b20", "#a0aec0", "#c53030"

_money = FuncFormatter(lambda v, _p: f"${v / 1e6:,.1f}M" if abs(v) >= 1e6
                       else f"${v / 1e3:,.0f}k" if abs(v) >= 1e3 else f"${v:,.0f}")


@contextmanager
def _figure(height: float, ncols: int = 1, nrows: int = 1,
            width: float = WIDTH) -> Iterator[tuple]:
    with sns.axes_style("whitegrid"), plt.rc_context({"font.size": 9, "axes.titlesize": 10,
                                                      "axes.titleweight": "bold"}), \
            warnings.catch_warnings():
        # seaborn 0.13 calls a colormap method matplotlib plans to deprecate: not ours to fix
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning,
                                module="seaborn")
        fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
        try:
            yield fig, axes
        finally:
            plt.close(fig)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def distributions(dists: pd.DataFrame, columns: pd.DataFrame, kind: str) -> str | None:
    """Small multiples of the numeric (``kind='numeric'``) or categorical distributions."""
    if dists.empty or columns.empty:
        return None
    kinds = columns.set_index("column_name")["kind"]
    labels = columns.set_index("column_name")["label"]
    names = [c for c in dists["column_name"].unique()
             if (kinds.get(c) == "numeric") == (kind == "numeric")]
    names = names[:9]
    if not names:
        return None
    ncols = 3
    nrows = -(-len(names) // ncols)
    with _figure(2.1 * nrows + 0.3, ncols, nrows) as (fig, axes):
        for ax in axes.flat[len(names):]:
            ax.axis("off")
        for ax, name in zip(axes.flat, names, strict=False):
            d = dists[dists["column_name"] == name].sort_values("bin_order")
            if kind == "numeric":
                ax.bar(range(len(d)), d["n"], width=1.0, color=BLUE, edgecolor="white",
                       linewidth=0.3)
                step = max(1, len(d) // 4)
                ticks = list(range(0, len(d), step))
                ax.set_xticks(ticks)
                ax.set_xticklabels([f"{d['bin_lower'].iloc[i]:,.4g}" for i in ticks],
                                   fontsize=7)
            else:
                d = d.head(8).iloc[::-1]
                ax.barh(d["label"].astype(str).str.slice(0, 18), d["n"], color=BLUE)
                ax.tick_params(axis="y", labelsize=7)
            ax.tick_params(axis="x", labelsize=7)
            ax.set_title(str(labels.get(name, name)), fontsize=8.5)
        return _png(fig)


def association_heatmap(assoc: pd.DataFrame) -> str | None:
    v = assoc[assoc["kind"] == "cramers_v"] if not assoc.empty else assoc
    if v.empty:
        return None
    names = sorted(set(v["column_a"]) | set(v["column_b"]))
    m = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for r in v.itertuples():
        m.loc[r.column_a, r.column_b] = m.loc[r.column_b, r.column_a] = r.value
    size = min(6.5, 1.6 + 0.38 * len(names))
    with _figure(size) as (fig, axes):
        ax = axes[0, 0]
        sns.heatmap(m, ax=ax, vmin=0, vmax=1, cmap="Blues", annot=len(names) <= 14,
                    fmt=".2f", annot_kws={"size": 6.5}, cbar_kws={"shrink": 0.7},
                    mask=np.triu(np.ones_like(m, dtype=bool), k=1), square=True)
        ax.set_title("Association between categorical columns (Cramer's V, bias-corrected)")
        ax.tick_params(labelsize=7.5)
        return _png(fig)


def segments(summary: pd.DataFrame) -> str | None:
    if summary.empty:
        return None
    s = summary.sort_values("segment_order")
    y = np.arange(len(s))
    with _figure(0.24 * len(s) + 1.1, width=7.0) as (fig, axes):
        ax = axes[0, 0]
        ax.barh(y - 0.2, s["customer_share"], height=0.4, color=GREY, label="share of customers")
        ax.barh(y + 0.2, s["revenue_share"], height=0.4, color=BLUE, label="share of revenue")
        ax.set_yticks(y)
        ax.set_yticklabels(s["segment"])
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title("Segments: share of customers and of revenue")
        return _png(fig)


def rfm_grid(grid: pd.DataFrame) -> str | None:
    """Customers per recency x frequency score (RFM only)."""
    if grid.empty:
        return None
    m = grid.pivot_table(index="r_score", columns="f_score", values="customers",
                         aggfunc="sum").reindex(index=[5, 4, 3, 2, 1], columns=[1, 2, 3, 4, 5])
    with _figure(3.2) as (fig, axes):
        ax = axes[0, 0]
        sns.heatmap(m.fillna(0), ax=ax, annot=True, fmt=",.0f", cmap="Blues",
                    annot_kws={"size": 8}, cbar=False)
        ax.set_xlabel("frequency score (F)")
        ax.set_ylabel("recency score (R)")
        ax.set_title("Customers by recency and frequency score")
        return _png(fig)


def cluster_profiles(clusters: pd.DataFrame) -> str | None:
    if clusters.empty or "profile_json" not in clusters:
        return None
    rows = {}
    for r in clusters.itertuples():
        prof = json.loads(r.profile_json) if isinstance(r.profile_json, str) else {}
        rows[f"{r.cluster_label} ({r.customers:,})"] = {k: v["z"] for k, v in prof.items()}
    m = pd.DataFrame(rows).T
    if m.empty:
        return None
    m.columns = [c.replace("_", " ") for c in m.columns]
    with _figure(0.45 * len(m) + 1.6) as (fig, axes):
        ax = axes[0, 0]
        lim = max(1.0, float(np.nanmax(np.abs(m.to_numpy()))))
        sns.heatmap(m, ax=ax, center=0, vmin=-lim, vmax=lim, cmap="RdBu_r", annot=True,
                    fmt=".1f", annot_kws={"size": 8}, cbar_kws={"shrink": 0.8})
        ax.set_title("Cluster profiles: mean of each feature in standard deviations from all "
                     "customers")
        ax.tick_params(labelsize=7.5)
        return _png(fig)


def monthly(periods: pd.DataFrame) -> str | None:
    m = periods[periods["grain"] == "month"].sort_values("period_start") \
        if not periods.empty else periods
    if m.empty:
        return None
    with _figure(3.0) as (fig, axes):
        ax = axes[0, 0]
        x = pd.to_datetime(m["period_start"])
        ax.plot(x, m["revenue"], color=BLUE, marker="o", markersize=3, label="revenue")
        ax.plot(x, m["trend"], color=GREY, linestyle="--", label="trend")
        peaks = m[m["is_peak"].astype(bool)]
        ax.scatter(pd.to_datetime(peaks["period_start"]), peaks["revenue"], color=ORANGE,
                   zorder=5, s=30, label="peak month")
        ax.yaxis.set_major_formatter(_money)
        ax.legend(fontsize=8)
        ax.set_title("Revenue per month, trend and peaks")
        return _png(fig)


def bars(periods: pd.DataFrame, grain: str, title: str, width: float = WIDTH) -> str | None:
    """Revenue by season, weekday or calendar month (seasonal index), peaks highlighted."""
    d = periods[periods["grain"] == grain].sort_values("period_order") \
        if not periods.empty else periods
    if d.empty:
        return None
    with _figure(2.6, width=width) as (fig, axes):
        ax = axes[0, 0]
        colors = [ORANGE if p else BLUE for p in d["is_peak"].astype(bool)]
        values = d["index"] if grain == "month_of_year" else d["revenue"]
        ax.bar(d["period"], values, color=colors)
        if width < WIDTH:
            ax.tick_params(axis="x", labelsize=7, rotation=30)
        if grain == "month_of_year":
            ax.axhline(1.0, color=GREY, linestyle="--", linewidth=1)
            ax.set_ylabel("seasonal index")
            ax.set_ylim(max(0.0, float(values.min()) - 0.15), float(values.max()) + 0.1)
        else:
            ax.yaxis.set_major_formatter(_money)
        ax.set_title(title + " (peaks in orange)")
        return _png(fig)


def preference_heatmap(prefs: pd.DataFrame, dimension: str, title: str) -> str | None:
    if prefs.empty:
        return None
    d = prefs[(prefs["dimension"] == dimension) & prefs["item_name"].isna()]
    if d.empty:
        return None
    order = list(dict.fromkeys(d["value"]))
    m = d.pivot_table(index="category_name", columns="value",
                      values="index_vs_overall").reindex(columns=order)
    with _figure(0.35 * len(m) + 1.5) as (fig, axes):
        ax = axes[0, 0]
        sns.heatmap(m, ax=ax, center=1.0, cmap="RdBu_r", annot=True, fmt=".2f",
                    annot_kws={"size": 8}, cbar_kws={"shrink": 0.8})
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_title(title)
        ax.tick_params(labelsize=7.5)
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
        return _png(fig)


def states(by_state: pd.DataFrame) -> str | None:
    if by_state.empty:
        return None
    d = by_state.head(15).iloc[::-1]
    with _figure(3.4) as (fig, axes):
        ax = axes[0, 0]
        ax.barh(d["state"], d["revenue"], color=BLUE)
        ax.xaxis.set_major_formatter(_money)
        ax.set_title("Revenue by customer state (top 15)")
        ax.tick_params(labelsize=7.5)
        return _png(fig)


def cohorts(cohort: pd.DataFrame) -> str | None:
    if cohort.empty:
        return None
    m = cohort.pivot_table(index="cohort_month", columns="months_since_first_purchase",
                           values="retention_rate")
    m = m.loc[:, [c for c in m.columns if c <= 18]]
    m.index = pd.to_datetime(m.index).strftime("%Y-%m")
    if len(m) > 24:
        m = m.iloc[:24]
    with _figure(0.22 * len(m) + 1.6) as (fig, axes):
        ax = axes[0, 0]
        sns.heatmap(m.iloc[:, 1:] if m.shape[1] > 1 else m, ax=ax, cmap="Blues", vmin=0,
                    cbar_kws={"shrink": 0.8, "format": PercentFormatter(1.0, decimals=0)})
        ax.set_xlabel("months since first purchase")
        ax.set_ylabel("first-purchase month")
        ax.set_title("Share of each cohort buying again, by month since the first purchase")
        ax.tick_params(labelsize=7)
        return _png(fig)


def clv_by_segment(summary: pd.DataFrame) -> str | None:
    if summary.empty or "avg_clv" not in summary or summary["avg_clv"].isna().all():
        return None
    s = summary.sort_values("segment_order")
    with _figure(0.3 * len(s) + 1.2) as (fig, axes):
        ax = axes[0, 0]
        ax.barh(s["segment"], s["avg_clv"], color=BLUE)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(_money)
        ax.set_title("Average predicted CLV per customer, by segment")
        return _png(fig)

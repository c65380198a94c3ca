"""The analyze stage: decide what the data supports, assign segments and clusters to every
customer, compute EDA, summaries, trends, preferences, affinity and recommendations, and
write them to the ``analytics`` tables (see ``tables.py`` and docs/architecture.md).

:func:`compute` is the part that depends on the purchases in scope: the analyze stage calls
it without filters, and a filtered report calls it with the report's filters (reading the
segments and clusters the analyze stage stored), so both show numbers made the same way.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import pandas as pd

from .. import warehouse
from ..datastore import store
from ..errors import EXIT_DATA_QUALITY
from ..settings import Settings
from . import affinity, clusters, eda, predictions, recommend, segments, trends
from .context import Context, Progress, _quiet, new_context
from .tables import TABLES, conform

#: analyses another stage owns, recorded here so that ``analytics.analyses`` is complete
PREDICT_ANALYSES = ("clv_bgnbd_gamma_gamma", "churn_classifier", "clv_heuristic",
                    "subscription_propensity")


def cluster_summary(ctx: Context, base: pd.DataFrame) -> pd.DataFrame:
    """The ``clusters`` table over the purchases in scope: the stored descriptions with
    customers, shares, revenue and mean CLV recomputed in scope."""
    if base.empty:
        return base
    scoped = segments.group_summary(ctx, "cluster_label").rename(columns={"grp": "cluster_label"})
    averages = segments.customer_averages(ctx, "cluster_label").rename(
        columns={"grp": "cluster_label"})
    keep = [c for c in base.columns if c not in
            ("customers", "share", "revenue", "revenue_share", "revenue_last_12_months",
             "avg_clv")]
    out = base[keep].merge(scoped, on="cluster_label", how="inner")
    if "avg_clv" in averages.columns:
        out = out.merge(averages[["cluster_label", "avg_clv"]], on="cluster_label", how="left")
    out["share"] = out["customer_share"]
    return out.sort_values("customers", ascending=False).reset_index(drop=True)


def compute(ctx: Context, cluster_base: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every table that depends on the purchases in scope (all but ``customer_segments``)."""
    have_segments = ctx.has("analytics", "customer_segments")
    tables: dict[str, pd.DataFrame] = {}
    ctx.progress("analyze: exploring columns", 0.2)
    tables.update(eda.run(ctx))
    if have_segments:
        ctx.progress("analyze: summarising segments", 0.4)
        tables["segment_summary"] = segments.summary(ctx)
        tables["clusters"] = cluster_summary(ctx, cluster_base)
    ctx.progress("analyze: trends and peaks", 0.5)
    tables["trend_periods"] = trends.periods(ctx)
    tables["preferences"] = trends.preferences(ctx, have_segments)
    if ctx.supported("geography").supported:
        ctx.record("geography", True, "revenue by state and preferences by Census region")
    else:
        ctx.gate("geography")
    ctx.progress("analyze: affinity", 0.7)
    tables["affinity"] = affinity.run(ctx)
    ctx.progress("analyze: recommendations", 0.8)
    span = ctx.span()
    inp = recommend.Inputs(tables, (span[1] - span[0]).days if span else None,
                           predictions.overview(ctx), ctx.cfg.alpha, ctx.cfg.min_group_size,
                           ctx.cfg.max_recommendations, ctx.cfg.peak_prominence)
    tables["recommendations"] = recommend.recommend(inp)
    ctx.record("recommendations", not tables["recommendations"].empty,
               f"{len(tables['recommendations'])} recommendations ranked by value at stake"
               if not tables["recommendations"].empty else "no candidate held its numbers")
    _record_other_stages(ctx)
    return tables


def _record_other_stages(ctx: Context) -> None:
    """Record the analyses of the transform and predict stages from what they left."""
    cap = ctx.supported("cohort_retention")
    built = ctx.has("marts", "agg_cohort_retention")
    ctx.record("cohort_retention", cap.supported and built,
               "marts.agg_cohort_retention (first-purchase month cohorts)" if cap.supported
               and built else cap.reason if not cap.supported else "the mart was not built",
               stage="transform")
    ran: dict[str, bool] = dict.fromkeys(PREDICT_ANALYSES, False)
    if predictions.available(ctx.store):
        preds = ctx.store.relation("analytics", "customer_predictions")
        row = ctx.query(
            "select sum(case when clv_method = 'bgnbd_gamma_gamma' then 1 else 0 end) as bg, "  # noqa: S608
            "sum(case when clv_method = 'heuristic_snapshot' then 1 else 0 end) as heur, "
            f"count(churn_probability) as churn from {preds}").iloc[0]  # noqa: S608
        ran.update(clv_bgnbd_gamma_gamma=bool(row["bg"]), clv_heuristic=bool(row["heur"]),
                   churn_classifier=bool(row["churn"]))
    ran["subscription_propensity"] = ctx.has("analytics", "propensity_scores")
    for name in PREDICT_ANALYSES:
        cap = ctx.supported(name)
        reason = ("see analytics.model_cards" if ran[name] else cap.reason if not cap.supported
                  else "supported, but the predict stage has not written it")
        ctx.record(name, ran[name], reason, stage="predict")


def analyze(settings: Settings, run_id: str, progress: Progress = _quiet) -> dict[str, Any]:
    """Run the whole analysis and replace the ``analytics`` tables it owns. Returns what
    the run summary shows: the analyses with their status and reason, and table sizes."""
    with store(settings) as s:
        ctx = new_context(s, settings, progress=progress)
        progress("analyze: segments and clusters", 0.05)
        customers = segments.load_customers(ctx)
        seg, seg_info = segments.assign(ctx, customers)
        cluster_ids, cluster_base = clusters.cluster(ctx, customers)
        if not seg.empty:
            labels = dict(zip(cluster_base.get("cluster_id", []),
                              cluster_base.get("cluster_label", []), strict=True))
            ids = cluster_ids.reindex(seg.index)
            seg["cluster_id"] = ids
            seg["cluster_label"] = ids.map(labels)
        s.write("analytics", "customer_segments", _stamp(conform("customer_segments", seg),
                                                         run_id))
        tables = compute(ctx, cluster_base if not seg.empty else pd.DataFrame())
        tables["analyses"] = pd.DataFrame(ctx.analyses)
        progress("analyze: writing results", 0.9)
        s.write_many("analytics", {name: _stamp(conform(name, tables.get(name)), run_id)
                                   for name in TABLES if name != "customer_segments"})
    return {"analyses": ctx.analyses, "scheme": seg_info.get("scheme"),
            "customers_segmented": len(seg),
            "rows": {name: len(tables.get(name, [])) for name in TABLES
                     if name != "customer_segments"},
            "recommendations": (tables["recommendations"]["title"].tolist()
                                if not tables["recommendations"].empty else [])}


def _stamp(frame: pd.DataFrame, run_id: str) -> pd.DataFrame:
    return frame.assign(run_id=pd.Series(run_id, index=frame.index, dtype="string"))


def analyze_stage(settings: Settings, summary: Any, progress: Progress = _quiet) -> None:
    """Pipeline stage ``analyze``: see :func:`analyze`. A failure is recorded (run log,
    summary) and stops the run before the report and publish."""
    started = warehouse.now()
    t0 = time.perf_counter()
    try:
        detail = analyze(settings, summary.run_id, progress)
        status, reason = "ran", ""
    except Exception as exc:  # noqa: BLE001 - recorded as a failed stage, one line
        detail, status = {}, "failed"
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        summary.errors.append(f"analyze failed: {reason}")
        summary.tracebacks.append(traceback.format_exc())
        summary.exit_code = max(summary.exit_code, EXIT_DATA_QUALITY)
    with store(settings) as s:
        ran = sum(a["status"] == "ran" for a in detail.get("analyses", []))
        warehouse.log_stage(s, summary.run_id, "analyze", status, started,
                            rows=detail.get("customers_segmented"),
                            detail=reason or f"{ran} analyses ran")
    summary.stage("analyze", status, reason, seconds=time.perf_counter() - t0, **detail)

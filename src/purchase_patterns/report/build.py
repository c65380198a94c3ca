"""The stakeholder report: one self-contained HTML file (figures embedded) and a PDF printed
from it, in ``reports/<run id>/``.

Content: the data and its quality, what the data supports, EDA, segments and clusters,
trends and peaks, preferences and affinity, predictions (when the predict stage has run) and
the ranked recommendations, with a methods appendix. Without filters the report reads the
``analytics`` tables the analyze stage wrote; with filters (see ``filters.py``) it recomputes
the same tables over the filtered purchases with the same code
(:func:`purchase_patterns.insights.stage.compute`), using the segments and clusters the
analyze stage assigned to every customer.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from .. import __version__, warehouse
from ..datastore import DataStore, store
from ..errors import EXIT_DATA_QUALITY, PurchasePatternsError, UsageError
from ..filters import Filters, parse_filters, validate_filters
from ..insights import predictions as preds
from ..insights.context import Context, Progress, _quiet
from ..insights.stage import compute, new_context
from ..insights.tables import TABLES, conform
from ..insights.trends import MONTH_NAMES, by_state, growth_summary, peak_periods
from ..settings import Settings
from . import figures
from .pdf import PdfError, print_pdf

TEMPLATES = Path(__file__).parent / "templates"
HTML_NAME, PDF_NAME = "report.html", "report.pdf"


@dataclass
class ReportResult:
    html: Path
    pdf: Path | None
    #: why there is no PDF (None when there is one)
    pdf_error: str | None
    filters: Filters


# -- gathering --------------------------------------------------------------------------------


def load_tables(s: DataStore) -> dict[str, pd.DataFrame]:
    """The analyze stage's tables (all but the per-customer one), as written."""
    return {name: s.query(f"select * from {s.relation('analytics', name)}")  # noqa: S608
            for name in TABLES if name != "customer_segments" and s.has_table("analytics", name)}


def _scope(ctx: Context) -> dict[str, Any]:
    lines, params = ctx.lines()
    row = ctx.query(
        "select count(*) as purchases, count(distinct f.customer_id) as customers, "  # noqa: S608
        "sum(f.amount) as revenue, min(f.purchase_date) as first_date, "
        f"max(f.purchase_date) as last_date from {lines}", params).iloc[0]  # noqa: S608
    return {"purchases": int(row["purchases"]), "customers": int(row["customers"]),
            "revenue": float(row["revenue"] or 0.0),
            "first_date": None if pd.isna(row["first_date"]) else str(row["first_date"])[:10],
            "last_date": None if pd.isna(row["last_date"]) else str(row["last_date"])[:10]}


def _quality(s: DataStore) -> dict[str, Any]:
    batches = s.query(
        "select source_file, source_format, variant, rows_in, rows_loaded, rows_rejected, "  # noqa: S608
        f"loaded_at from {s.relation('raw', 'batches')} order by loaded_at")  # noqa: S608
    batches["file"] = [Path(p).name for p in batches["source_file"]]
    rejects = s.query(
        "select source_file, column_name, reason, count(*) as n from "  # noqa: S608
        f"{s.relation('raw', 'rejects')} group by 1, 2, 3 order by 4 desc limit 10")
    rejects["file"] = [Path(p).name for p in rejects["source_file"]]
    checks = pd.DataFrame()
    if s.has_table("quality", "dq_results"):
        dq = s.relation("quality", "dq_results")
        checks = s.query(
            "select check_name, source, severity, status, failing_rows, message from "  # noqa: S608
            f"{dq} where run_id = (select run_id from {dq} order by checked_at desc limit 1)")
    counts = (checks.groupby("status").size().to_dict() if not checks.empty else {})
    problems = checks[checks["status"] != "pass"] if not checks.empty else checks
    return {"batches": batches.to_dict("records"), "rejects": rejects.to_dict("records"),
            "checks_total": len(checks), "checks_by_status": counts,
            "problems": problems.to_dict("records")}


def _rfm_grid(ctx: Context) -> pd.DataFrame:
    segs = ctx.store.relation("analytics", "customer_segments")
    params: dict[str, Any] = {}
    scope = " where s.r_score is not null"
    if ctx.filters:
        lines, params = ctx.lines(with_segments=ctx.filters.needs_segments)
        scope += f" and s.customer_id in (select f.customer_id from {lines})"  # noqa: S608
    return ctx.query(f"select s.r_score, s.f_score, count(*) as customers from {segs} as s"  # noqa: S608
                     f"{scope} group by 1, 2", params)  # noqa: S608


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    return [{k: (None if _missing(v) else v) for k, v in r.items()}
            for r in frame.to_dict("records")]


def _missing(v: Any) -> bool:
    try:
        return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
    except TypeError:
        return False


def gather(ctx: Context, tables: dict[str, pd.DataFrame], analyses: list[dict[str, Any]],
           insights_run: str | None) -> dict[str, Any]:
    """Everything the template shows, with the figures drawn."""
    s = ctx.store
    t = {name: tables.get(name, pd.DataFrame()) for name in TABLES}
    periods = t["trend_periods"]
    months = periods[periods["grain"] == "month"] if not periods.empty else periods
    moy = periods[periods["grain"] == "month_of_year"] if not periods.empty else periods
    weeks = periods[periods["grain"] == "week"] if not periods.empty else periods
    prefs, aff = t["preferences"], t["affinity"]
    seg = t["segment_summary"]
    scheme = str(seg["scheme"].iloc[0]) if not seg.empty else None
    states = by_state(ctx) if ctx.supported("geography").supported else pd.DataFrame()
    if len(states) < 2:
        states = pd.DataFrame()  # one state (a state filter) is not a geography
    grid = _rfm_grid(ctx) if scheme == "rfm" else pd.DataFrame()
    cohort = pd.DataFrame()
    if not ctx.filters and ctx.has("marts", "agg_cohort_retention"):
        cohort = ctx.query(
            "select cohort_month, months_since_first_purchase, retention_rate from "  # noqa: S608
            f"{s.relation('marts', 'agg_cohort_retention')}")
    overview = preds.overview(ctx)
    cols = t["eda_columns"]
    tests = t["eda_tests"].sort_values("p_adjusted") if not t["eda_tests"].empty \
        else t["eda_tests"]
    assoc = t["eda_associations"]
    top_assoc = (assoc.assign(strength=assoc["value"].abs())
                 .sort_values("strength", ascending=False).head(10)) if not assoc.empty \
        else assoc
    season_top = pd.DataFrame()
    if not prefs.empty:
        sp = prefs[(prefs["dimension"] == "season") & prefs["item_name"].notna()]
        season_top = (sp[sp["purchases"] >= ctx.cfg.min_group_size]
                      .sort_values("index_vs_overall", ascending=False)
                      .groupby("value", sort=False).head(3))
    attr = aff[aff["kind"] == "attribute"] if not aff.empty else aff
    pairs = aff[aff["kind"] == "item_pair"] if not aff.empty else aff
    peak_list = []
    if not moy.empty:
        for p in peak_periods(moy.sort_values("period_order")["index"].to_numpy(),
                              ctx.cfg.peak_prominence):
            peak_list.append({**p, "names": [MONTH_NAMES[m - 1] for m in p["months"]]})
    figs = {
        "dist_numeric": figures.distributions(t["eda_distributions"], cols, "numeric"),
        "dist_categorical": figures.distributions(t["eda_distributions"], cols, "categorical"),
        "associations": figures.association_heatmap(assoc),
        "segments": figures.segments(seg),
        "rfm_grid": figures.rfm_grid(grid),
        "clusters": figures.cluster_profiles(t["clusters"]),
        "monthly": figures.monthly(periods),
        "month_of_year": figures.bars(periods, "month_of_year",
                                      "Seasonal index by calendar month"),
        "season": figures.bars(periods, "season", "Revenue by season", width=4.2),
        "weekday": figures.bars(periods, "weekday", "Revenue by day of week", width=4.2),
        "pref_season": figures.preference_heatmap(
            prefs, "season", "Category share by season, relative to all purchases (1 = same)"),
        "pref_segment": figures.preference_heatmap(
            prefs, "segment", "Category share by segment, relative to all purchases"),
        "states": figures.states(states),
        "cohorts": figures.cohorts(cohort),
        "clv": figures.clv_by_segment(seg),
    }
    recs = _records(t["recommendations"])
    for r in recs:
        r["evidence"] = json.loads(r.get("evidence_json") or "{}")
    return {
        "version": __version__,
        "insights_run": insights_run,
        "profile": ctx.profile,
        "scope": _scope(ctx),
        "filters": ctx.filters,
        "quality": _quality(s),
        "analyses": analyses,
        "ran": [a for a in analyses if a["status"] == "ran"],
        "skipped": [a for a in analyses if a["status"] != "ran"],
        "columns": _records(cols),
        "tests": _records(tests),
        "top_associations": _records(top_assoc),
        "scheme": scheme,
        "segments": _records(seg),
        "clusters": _records(t["clusters"]),
        "growth": growth_summary(months) if not months.empty else None,
        "peak_periods": peak_list,
        "peak_months": _records(months[months["is_peak"].astype(bool)]) if not months.empty
        else [],
        "peak_weeks": _records(weeks[weeks["is_peak"].astype(bool)]
                               .sort_values("index", ascending=False).head(8))
        if not weeks.empty else [],
        "seasons": _records(periods[periods["grain"] == "season"].sort_values("period_order"))
        if not periods.empty else [],
        "period_methods": _records(periods.drop_duplicates("grain")[["grain", "peak_method"]])
        if not periods.empty else [],
        "season_items": _records(season_top),
        "attribute_rules": _records(attr[(attr["p_value"] < ctx.cfg.alpha) & (attr["lift"] > 1)]
                                    .sort_values("lift", ascending=False).head(10))
        if not attr.empty else [],
        "item_pairs": _records(pairs.sort_values("lift", ascending=False).head(10))
        if not pairs.empty else [],
        "states": _records(states.head(10)),
        "predictions": overview,
        "model_cards": preds.model_cards(s) if overview else [],
        "model_metrics": _records(preds.model_metrics(s)) if overview else [],
        "recommendations": recs,
        "settings": ctx.settings,
        "figures": figs,
    }


# -- rendering ---------------------------------------------------------------------------------


def _money(v: Any) -> str:
    if _missing(v):
        return "–"
    v = float(v)
    return f"${v:,.0f}" if abs(v) >= 100 or v == 0 else f"${v:,.2f}"


def _num(v: Any, digits: int = 2) -> str:
    if _missing(v):
        return "–"
    v = float(v)
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.{digits}f}" if abs(v) < 1e4 else f"{v:,.0f}"


def _pct(v: Any, digits: int = 0) -> str:
    return "–" if _missing(v) else f"{float(v):.{digits}%}"


def _pval(v: Any) -> str:
    if _missing(v):
        return "–"
    v = float(v)
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def _top_values(v: Any) -> str:
    try:
        items = json.loads(v or "[]")
    except ValueError:
        return ""
    return ", ".join(f"{i['value']} ({i['share']:.0%})" for i in items[:4])


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(money=_money, num=_num, pct=_pct, pval=_pval, top_values=_top_values)
    return env


def render(content: dict[str, Any], *, run_id: str) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return environment().get_template("report.html.j2").render(
        **content, run_id=run_id, generated_at=now)


# -- building ----------------------------------------------------------------------------------


def build_report(settings: Settings, run_id: str, filters: Filters | list[str] | None = None,
                 progress: Progress = _quiet, *, path: Path | None = None,
                 pdf: bool | None = None) -> ReportResult:
    """Write ``report.html`` and ``report.pdf`` for the purchases matching ``filters``, from
    the working warehouse or the DuckDB file ``path`` (e.g. the published copy the dashboard
    reads, which no run ever locks). ``pdf`` overrides the ``report.pdf`` setting."""
    flt = filters if isinstance(filters, Filters) else parse_filters(filters or [])
    out_dir = settings.reports_dir / run_id
    with store(settings, read_only=True, path=path) as s:
        if not s.has_table("analytics", "analyses"):
            raise UsageError("no insights yet: run 'purchase-patterns analyze' (or 'run') "
                             "before building a report")
        ctx = new_context(s, settings, progress=progress)
        flt = validate_filters(s, flt, dated=ctx.profile.dated)
        ctx.filters = flt
        stored = load_tables(s)
        insights_run = (str(stored["analyses"]["run_id"].iloc[0])
                        if not stored["analyses"].empty else None)
        if flt:
            progress("report: recomputing insights for the filters", 0.1)
            base = stored.get("clusters", pd.DataFrame())
            tables = {name: conform(name, frame) for name, frame in compute(ctx, base).items()}
            analyses = ctx.analyses
        else:
            tables = stored
            analyses = _records(stored["analyses"])
        progress("report: drawing figures", 0.5)
        content = gather(ctx, tables, analyses, insights_run)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / HTML_NAME
    tmp = html_path.with_name(f".{HTML_NAME}.tmp")
    tmp.write_text(render(content, run_id=run_id), encoding="utf-8")
    tmp.replace(html_path)
    pdf_path: Path | None = None
    pdf_error = None
    if settings.report.pdf if pdf is None else pdf:
        progress("report: printing the PDF", 0.8)
        try:
            pdf_path = print_pdf(html_path, out_dir / PDF_NAME,
                                 chromium=settings.report.chromium,
                                 timeout=settings.report.pdf_timeout_seconds)
        except PdfError as exc:
            pdf_error = str(exc)
    else:
        pdf_error = "PDF not asked for" if pdf is False else "PDF switched off (report.pdf: false)"
    return ReportResult(html_path, pdf_path, pdf_error, flt)


def report_stage(settings: Settings, summary: Any, progress: Progress = _quiet,
                 filters: list[str] | Filters | None = None) -> None:
    """Pipeline stage ``report``: build the report for ``summary.run_id`` and record it (run
    log, summary). A missing PDF is noted, not a failure; a usage error (bad filter, no
    insights yet) propagates; any other failure is recorded and stops the run."""
    started = warehouse.now()
    t0 = time.perf_counter()
    try:
        res = build_report(settings, summary.run_id, filters, progress)
    except PurchasePatternsError:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded as a failed stage, one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = f"{type(exc).__name__}: {first}"
        summary.errors.append(f"report failed: {reason}")
        summary.exit_code = max(summary.exit_code, EXIT_DATA_QUALITY)
        _log(settings, summary.run_id, "failed", started, reason)
        summary.stage("report", "failed", reason, seconds=time.perf_counter() - t0)
        return
    reason = f"no PDF: {res.pdf_error}" if res.pdf_error else ""
    _log(settings, summary.run_id, "ran", started, reason or str(res.html))
    summary.stage("report", "ran", reason, seconds=time.perf_counter() - t0,
                  html=str(res.html), pdf=str(res.pdf) if res.pdf else None,
                  filters=res.filters.as_dict())


def _log(settings: Settings, run_id: str, status: str, started: datetime, detail: str) -> None:
    with store(settings) as s:
        warehouse.log_stage(s, run_id, "report", status, started, detail=detail)

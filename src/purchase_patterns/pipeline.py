"""The stages wired in one place. The CLI and the Airflow DAGs both call these functions.

Each stage records itself in ``meta.run_log``; :class:`RunSummary` is what ``--json`` prints.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import warehouse
from .errors import (
    EXIT_BAD_INPUT,
    EXIT_DATA_QUALITY,
    EXIT_OK,
    PurchasePatternsError,
    UsageError,
)
from .ingest import BatchResult, expand_inputs, ingest_file
from .lake import Lake
from .settings import Settings

Progress = Callable[[str, float | None], None]


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@dataclass
class StageRecord:
    name: str
    status: str  # ran | skipped | failed
    reason: str = ""
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunSummary:
    run_id: str
    command: str
    home: str
    target: str
    warehouse: str
    lake: str
    reports: str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    stages: list[StageRecord] = field(default_factory=list)
    exit_code: int = EXIT_OK
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def stage(self, name: str, status: str, reason: str = "", seconds: float = 0.0,
              **detail: Any) -> StageRecord:
        rec = StageRecord(name, status, reason, round(seconds, 3), detail)
        self.stages.append(rec)
        return rec


def _noop(_msg: str, _frac: float | None = None) -> None:
    return None


def new_summary(settings: Settings, command: str, run_id: str | None = None) -> RunSummary:
    return RunSummary(
        run_id=run_id or new_run_id(),
        command=command,
        home=str(settings.home),
        target=settings.target,
        warehouse=str(settings.warehouse_path),
        lake=settings.lake,
        reports=str(settings.reports_dir),
    )


# -- stages -------------------------------------------------------------------------------------


def demo_input(settings: Settings, progress: Progress = _noop) -> Path:
    """The generated demo dataset used by ``run`` without ``--input`` (made once, then reused)."""
    from .generate import generate

    out = settings.home / "demo" / f"demo_purchases_{settings.demo_customers}c_seed{settings.seed}.csv"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        progress("generating demo dataset", None)
        generate(out, settings.demo_customers, seed=settings.seed)
    return out


def ingest_stage(settings: Settings, summary: RunSummary, inputs: list[Path], *,
                 fmt: str = "auto", mapping: Path | None = None,
                 progress: Progress = _noop) -> list[BatchResult]:
    """Land, validate and load every input file. A file that cannot be used is reported and
    the others go on; the run then exits 2."""
    started = warehouse.now()
    t0 = time.perf_counter()
    files = expand_inputs(inputs)
    lake = Lake(settings.lake)
    results: list[BatchResult] = []
    con = warehouse.connect(settings)
    try:
        warehouse.start_run(con, summary.run_id, summary.command)
        for i, path in enumerate(files):
            def step(msg: str, _i: int = i, _p: Path = path) -> None:
                progress(f"{_p.name}: {msg}", _i / max(len(files), 1))

            try:
                res = ingest_file(con, lake, path, run_id=summary.run_id, fmt=fmt,
                                  mapping=mapping, on_step=step)
            except PurchasePatternsError as exc:
                res = BatchResult(file=str(path), error=str(exc))
                summary.errors.append(str(exc))
                summary.exit_code = max(summary.exit_code, exc.exit_code)
            results.append(res)
            summary.inputs.append(res.as_dict())
        progress("ingest done", 1.0)
        loaded = sum(r.rows_loaded for r in results if not r.duplicate_skipped)
        status = "failed" if all(r.error for r in results) else "ran"
        warehouse.log_stage(con, summary.run_id, "ingest", status, started, rows=loaded,
                            detail=f"{len(files)} file(s)")
    finally:
        con.close()
    summary.stage("ingest", status, seconds=time.perf_counter() - t0,
                  files=len(files), rows_loaded=loaded)
    return results


def land_inputs(settings: Settings, inputs: list[Path], *, fmt: str = "auto",
                mapping: Path | None = None) -> list[dict[str, Any]]:
    """Land files in the lake without loading them (the ``ingest_to_lake`` DAG).

    Returns one manifest entry per file; a file that cannot be used raises
    :class:`~purchase_patterns.errors.InputFileError` naming it."""
    from .ingest import land_file

    lake = Lake(settings.lake)
    return [land_file(lake, p, fmt=fmt, mapping=mapping) for p in expand_inputs(inputs)]


def load_pending(settings: Settings, summary: RunSummary) -> list[BatchResult]:
    """Load every landed batch that is not in the warehouse yet (the second DAG's first task).
    Safe to retry: a batch is loaded in one transaction and never twice."""
    from .ingest import load_landed, pending_batches

    started = warehouse.now()
    t0 = time.perf_counter()
    lake = Lake(settings.lake)
    con = warehouse.connect(settings)
    results: list[BatchResult] = []
    try:
        warehouse.start_run(con, summary.run_id, summary.command)
        for entry in pending_batches(con, lake):
            try:
                res = load_landed(con, lake, entry, run_id=summary.run_id)
            except PurchasePatternsError as exc:
                res = BatchResult(file=entry.get("source_file", "?"), error=str(exc))
                summary.errors.append(str(exc))
                summary.exit_code = max(summary.exit_code, exc.exit_code)
            results.append(res)
            summary.inputs.append(res.as_dict())
        loaded = sum(r.rows_loaded for r in results)
        warehouse.log_stage(con, summary.run_id, "load", "ran", started, rows=loaded,
                            detail=f"{len(results)} pending batch(es)")
    finally:
        con.close()
    summary.stage("load", "ran", seconds=time.perf_counter() - t0, batches=len(results),
                  rows_loaded=sum(r.rows_loaded for r in results))
    return results


def finish(settings: Settings, summary: RunSummary) -> None:
    """Record the run's outcome in ``meta.runs``."""
    status = {EXIT_OK: "succeeded", EXIT_DATA_QUALITY: "failed_quality",
              EXIT_BAD_INPUT: "failed_input"}.get(summary.exit_code, "failed")
    con = warehouse.connect(settings)
    try:
        warehouse.start_run(con, summary.run_id, summary.command)
        warehouse.finish_run(con, summary.run_id, status, summary.exit_code, summary.as_dict())
    finally:
        con.close()


def run_pipeline(settings: Settings, inputs: list[Path] | None, *, fmt: str = "auto",
                 mapping: Path | None = None, progress: Progress = _noop,
                 command: str = "run") -> RunSummary:
    """The main job: ingest → transform → analyze → report → publish."""
    summary = new_summary(settings, command)
    if not inputs:
        inputs = [demo_input(settings, progress)]
    ingest_stage(settings, summary, inputs, fmt=fmt, mapping=mapping, progress=progress)
    if summary.exit_code == EXIT_BAD_INPUT and not any(
        r.get("rows_loaded") for r in summary.inputs
    ):
        for name in downstream_stages():
            summary.stage(name, "skipped", "no usable input was loaded")
        finish(settings, summary)
        return summary
    for name, fn in DOWNSTREAM:
        if summary.exit_code == EXIT_DATA_QUALITY:
            summary.stage(name, "skipped", "an earlier stage failed a data-quality check")
            continue
        fn(settings, summary, progress)
    # The run's outcome is recorded before publishing, so the published copy shows it.
    finish(settings, summary)
    publish_stage(settings, summary, progress)
    finish(settings, summary)
    return summary


def run_stages(settings: Settings, names: list[str], *, command: str,
               progress: Progress = _noop) -> RunSummary:
    """Run some downstream stages (e.g. ``transform``) on what the warehouse already holds,
    then publish when they succeed. Stages run in pipeline order whatever order is given."""
    unknown = [n for n in names if n not in dict(DOWNSTREAM)]
    if unknown:
        raise UsageError(f"unknown stage(s): {', '.join(unknown)}")
    summary = new_summary(settings, command)
    if not settings.warehouse_path.exists():
        raise UsageError(f"{settings.warehouse_path}: no warehouse yet; run "
                         "'purchase-patterns run' or 'ingest' first")
    con = warehouse.connect(settings)
    try:
        warehouse.start_run(con, summary.run_id, command)
    finally:
        con.close()
    for name, fn in DOWNSTREAM:
        if name not in names:
            continue
        if summary.exit_code == EXIT_DATA_QUALITY:
            summary.stage(name, "skipped", "an earlier stage failed a data-quality check")
            continue
        fn(settings, summary, progress)
    finish(settings, summary)
    publish_stage(settings, summary, progress)
    finish(settings, summary)
    return summary


def downstream_stages() -> list[str]:
    return [name for name, _ in DOWNSTREAM] + ["publish"]


def data_is_dated(settings: Settings) -> bool:
    con = warehouse.connect(settings)
    try:
        n_dated = con.execute(
            "select count(*) from raw.purchases where purchase_date is not null"
        ).fetchone()[0]
    finally:
        con.close()
    return n_dated > 0


def transform_stage(settings: Settings, summary: RunSummary, progress: Progress = _noop) -> None:
    """dbt build (models + tests), then the data-quality results and report for the run.

    A failing error-severity check (or a model that does not build) marks the run as a
    data-quality failure (exit 1): later stages are skipped and nothing is published."""
    from .transform import run_transform, write_quality_report, write_quality_results

    progress("transforming with dbt", None)
    started = warehouse.now()
    t0 = time.perf_counter()
    dated = data_is_dated(settings)
    result = run_transform(settings, summary.run_id, dated=dated)
    failed = result.failed_checks
    ok = result.success and not failed
    report = settings.reports_dir / summary.run_id / "data_quality.html"
    con = warehouse.connect(settings)
    try:
        write_quality_results(con, summary.run_id, summary.inputs, result)
        write_quality_report(con, summary.run_id, report.parent)
        warehouse.log_stage(con, summary.run_id, "transform", "ran" if ok else "failed",
                            started, rows=len(result.models_built),
                            detail=f"{len(result.tests)} tests, {len(failed)} failing")
    finally:
        con.close()
    for name, reason in result.models_skipped:
        summary.stage(f"model:{name}", "skipped", reason)
    summary.stage("transform", "ran" if ok else "failed", seconds=time.perf_counter() - t0,
                  models=len(result.models_built), tests=len(result.tests),
                  failing=[f"{t['name']}: {t.get('failures', '?')} rows" for t in failed],
                  warnings=[t["name"] for t in result.warnings], quality_report=str(report))
    if not ok:
        summary.exit_code = max(summary.exit_code, EXIT_DATA_QUALITY)
        for t in failed:
            summary.errors.append(
                f"data-quality check failed: {t['name']} ({t.get('failures', '?')} failing rows)"
            )
        if not failed:
            summary.errors.append("dbt build failed: " + (result.message or "see the dbt log"))


def publish_stage(settings: Settings, summary: RunSummary, progress: Progress = _noop) -> None:
    """Publish the finished warehouse for readers (see ``publish.py``)."""
    from .publish import publish

    if summary.exit_code != EXIT_OK:
        summary.stage("publish", "skipped", "the run did not succeed; the previous "
                      "published warehouse stays in place")
        return
    progress("publishing", None)
    t0 = time.perf_counter()
    path = publish(settings, summary.run_id)
    summary.stage("publish", "ran", seconds=time.perf_counter() - t0, path=str(path))


def analyze_stage(settings: Settings, summary: RunSummary, progress: Progress = _noop) -> None:
    """EDA, segments, clusters, trends, affinity and recommendations into ``analytics``
    (see ``insights/stage.py``)."""
    from .insights.stage import analyze_stage as stage

    stage(settings, summary, progress)


def report_stage(settings: Settings, summary: RunSummary, progress: Progress = _noop,
                 filters: list[str] | None = None) -> None:
    """The stakeholder report (HTML + PDF) in ``reports/<run id>/`` (see ``report/build.py``);
    ``run`` builds it unfiltered, the ``report`` command with its ``--filter`` options."""
    from .report.build import report_stage as stage

    stage(settings, summary, progress, filters)


def run_report(settings: Settings, filters: list[str] | None = None,
               progress: Progress = _noop) -> RunSummary:
    """The ``report`` command: a report run of its own, recorded in ``meta.runs``; nothing is
    written to the warehouse, so nothing is published. A bad filter is a usage error."""
    from .filters import parse_filters

    parse_filters(filters or [])  # syntax and fixed value sets, before anything starts
    if not settings.warehouse_path.exists():
        raise UsageError(f"{settings.warehouse_path}: no warehouse yet; run "
                         "'purchase-patterns run' first")
    summary = new_summary(settings, "report")
    con = warehouse.connect(settings)
    try:
        warehouse.start_run(con, summary.run_id, "report")
    finally:
        con.close()
    try:
        report_stage(settings, summary, progress, filters)
    except PurchasePatternsError as exc:
        summary.stage("report", "failed", str(exc))
        summary.errors.append(str(exc))
        summary.exit_code = max(summary.exit_code, exc.exit_code)
        finish(settings, summary)
        raise
    finish(settings, summary)
    return summary


#: Stages after ingest, in order; each is ``fn(settings, summary, progress)``. The predict
#: stage (CLV, churn) goes between transform and analyze.
DOWNSTREAM: list[tuple[str, Callable[..., Any]]] = [
    ("transform", transform_stage),
    ("analyze", analyze_stage),
    ("report", report_stage),
]

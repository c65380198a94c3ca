"""The stages wired in one place. The CLI and the Airflow DAGs both call these functions.

Each stage records itself in ``meta.run_log`` (``warehouse.log_stage`` through a
``DataStore``, so on DuckDB and on BigQuery alike); :class:`RunSummary` is what ``--json`` prints.
"""

from __future__ import annotations

import secrets
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import warehouse
from .datastore import DataStore, DuckDBStore, open_store, store
from .errors import (
    EXIT_BAD_INPUT,
    EXIT_DATA_QUALITY,
    EXIT_OK,
    PurchasePatternsError,
    UsageError,
)
from .faults import checkpoint
from .ingest import BatchResult, BatchTarget, DuckDBBatches, expand_inputs, ingest_file
from .lake import open_lake
from .settings import Settings

if TYPE_CHECKING:
    from .transform import TransformResult

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
    #: tracebacks of the errors that were reported rather than raised (shown with --debug)
    tracebacks: list[str] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["tracebacks"]
        return out

    def failed(self, exc: PurchasePatternsError) -> None:
        """Record an error that stops one file, not the run."""
        self.errors.append(str(exc))
        self.tracebacks.append(traceback.format_exc())
        self.exit_code = max(self.exit_code, exc.exit_code)

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
        warehouse=settings.warehouse_uri,
        lake=settings.lake,
        reports=str(settings.reports_dir),
    )


@contextmanager
def loader(settings: Settings) -> Iterator[tuple[Any, BatchTarget, DataStore]]:
    """``(con, target, store)`` for loading: the DuckDB connection files are validated in,
    where checked batches go, and the store the run log is written to. On DuckDB all three
    are the warehouse; on BigQuery ``con`` is a scratch database."""
    if settings.target == "bigquery":
        bq = open_store(settings)  # says so when the cloud extra is missing

        from .bigquery_load import BigQueryBatches

        con = warehouse.scratch(settings)
        try:
            yield con, BigQueryBatches(bq), bq
        finally:
            con.close()
            bq.close()
        return
    con = warehouse.connect(settings)
    try:
        yield con, DuckDBBatches(con), DuckDBStore(con, read_only=False)
    finally:
        con.close()


def warehouse_exists(settings: Settings) -> bool:
    """Whether anything was loaded into the configured warehouse yet."""
    if settings.target == "bigquery":
        with store(settings, read_only=True) as s:
            return s.has_table("raw", "batches")
    return settings.warehouse_path.exists()


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
    lake = open_lake(settings)
    lake.sweep()
    results: list[BatchResult] = []
    with loader(settings) as (con, target, log):
        warehouse.start_run(log, summary.run_id, summary.command)
        for i, path in enumerate(files):
            def step(msg: str, _i: int = i, _p: Path = path) -> None:
                checkpoint(settings, f"ingest:{_p.name}:{msg}", summary.run_id)
                progress(f"{_p.name}: {msg}", _i / max(len(files), 1))

            try:
                res = ingest_file(con, lake, path, run_id=summary.run_id, fmt=fmt,
                                  mapping=mapping, on_step=step, target=target)
            except PurchasePatternsError as exc:
                res = BatchResult(file=str(path), error=str(exc))
                summary.failed(exc)
            results.append(res)
            summary.inputs.append(res.as_dict())
        progress("ingest done", 1.0)
        loaded = sum(r.rows_loaded for r in results if not r.duplicate_skipped)
        status = "failed" if all(r.error for r in results) else "ran"
        warehouse.log_stage(log, summary.run_id, "ingest", status, started, rows=loaded,
                         detail=f"{len(files)} file(s)")
    summary.stage("ingest", status, seconds=time.perf_counter() - t0,
                  files=len(files), rows_loaded=loaded)
    return results


def land_inputs(settings: Settings, inputs: list[Path], *, fmt: str = "auto",
                mapping: Path | None = None) -> list[dict[str, Any]]:
    """Land files in the lake without loading them (the ``ingest_to_lake`` DAG).

    Returns one manifest entry per file; a file that cannot be used raises
    :class:`~purchase_patterns.errors.InputFileError` naming it."""
    from .ingest import land_file

    lake = open_lake(settings)
    lake.sweep()
    return [land_file(lake, p, fmt=fmt, mapping=mapping) for p in expand_inputs(inputs)]


def load_pending(settings: Settings, summary: RunSummary) -> list[BatchResult]:
    """Load every landed batch that is not in the warehouse yet (the second DAG's first task).
    Safe to retry: a batch is loaded all or nothing and never twice, and the batches an
    earlier try of the same run loaded are reported (and logged) again, so that the run
    records what one uninterrupted try would have."""
    from .ingest import load_landed, pending_batches

    started = warehouse.now()
    t0 = time.perf_counter()
    lake = open_lake(settings)
    lake.sweep()
    results: list[BatchResult] = []
    with loader(settings) as (con, target, log):
        warehouse.start_run(log, summary.run_id, summary.command)
        for entry in pending_batches(con, lake, target, run_id=summary.run_id):
            def step(msg: str, _name: str = entry.get("source_file", "?")) -> None:
                checkpoint(settings, f"load:{_name}:{msg}", summary.run_id)

            try:
                res = load_landed(con, lake, entry, run_id=summary.run_id, on_step=step,
                                  target=target)
            except PurchasePatternsError as exc:
                res = BatchResult(file=entry.get("source_file", "?"), error=str(exc))
                summary.failed(exc)
            results.append(res)
            summary.inputs.append(res.as_dict())
        loaded = sum(r.rows_loaded for r in results)
        warehouse.log_stage(log, summary.run_id, "load", "ran", started, rows=loaded,
                         detail=f"{len(results)} pending batch(es)")
    summary.stage("load", "ran", seconds=time.perf_counter() - t0, batches=len(results),
                  rows_loaded=sum(r.rows_loaded for r in results))
    return results


#: Stages whose failure means the data failed a check (the others fail for other reasons).
_QUALITY_STAGES = frozenset({"ingest", "load", "transform"})


def finish(settings: Settings, summary: RunSummary, path: Path | None = None) -> None:
    """Record the run's outcome in ``meta.runs`` of the working warehouse (or of the
    warehouse file ``path``, e.g. the copy being published)."""
    status = {EXIT_OK: "succeeded", EXIT_DATA_QUALITY: "failed_quality",
              EXIT_BAD_INPUT: "failed_input"}.get(summary.exit_code, "failed")
    if status == "failed_quality" and not any(
        st.status == "failed" and st.name in _QUALITY_STAGES for st in summary.stages
    ) and any(st.status == "failed" for st in summary.stages):
        status = "failed"  # e.g. analyze broke: not the data's fault
    with store(settings, path=path) as s:
        warehouse.start_run(s, summary.run_id, summary.command)
        warehouse.finish_run(s, summary.run_id, status, summary.exit_code, summary.as_dict())


def _register(settings: Settings, summary: RunSummary) -> None:
    """Record the run as 'running' before it does anything, so that a crash at any point
    shows in the run log (the next run marks it 'interrupted')."""
    with store(settings) as s:
        warehouse.start_run(s, summary.run_id, summary.command)


def run_downstream_stage(settings: Settings, summary: RunSummary, name: str,
                         fn: Callable[..., Any], progress: Progress) -> None:
    """Run one downstream stage between its start and end checkpoints (see ``faults.py``)."""
    checkpoint(settings, f"stage:{name}:start", summary.run_id)
    fn(settings, summary, progress)
    checkpoint(settings, f"stage:{name}:end", summary.run_id)


def _conclude(settings: Settings, summary: RunSummary, progress: Progress) -> None:
    """Publish, then record the outcome. The published copy gets the outcome written into it
    before it is swapped in; the working warehouse gets it last, so a run killed anywhere
    before its end stays 'running' there and the next run marks it 'interrupted'."""
    publish_stage(settings, summary, progress)
    finish(settings, summary)
    checkpoint(settings, "run:end", summary.run_id)


def run_pipeline(settings: Settings, inputs: list[Path] | None, *, fmt: str = "auto",
                 mapping: Path | None = None, progress: Progress = _noop,
                 command: str = "run") -> RunSummary:
    """The main job: ingest → transform → analyze → report → publish."""
    summary = new_summary(settings, command)
    _register(settings, summary)
    checkpoint(settings, "run:start", summary.run_id)
    if not inputs:
        inputs = [demo_input(settings, progress)]
    checkpoint(settings, "stage:ingest:start", summary.run_id)
    ingest_stage(settings, summary, inputs, fmt=fmt, mapping=mapping, progress=progress)
    checkpoint(settings, "stage:ingest:end", summary.run_id)
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
        run_downstream_stage(settings, summary, name, fn, progress)
    _conclude(settings, summary, progress)
    return summary


def run_stages(settings: Settings, names: list[str], *, command: str,
               progress: Progress = _noop) -> RunSummary:
    """Run some downstream stages (e.g. ``transform``) on what the warehouse already holds,
    then publish when they succeed. Stages run in pipeline order whatever order is given."""
    unknown = [n for n in names if n not in dict(DOWNSTREAM)]
    if unknown:
        raise UsageError(f"unknown stage(s): {', '.join(unknown)}")
    summary = new_summary(settings, command)
    if not warehouse_exists(settings):
        raise UsageError(f"{settings.warehouse_uri}: no warehouse yet; run "
                         "'purchase-patterns run' or 'ingest' first")
    _register(settings, summary)
    checkpoint(settings, "run:start", summary.run_id)
    for name, fn in DOWNSTREAM:
        if name not in names:
            continue
        if summary.exit_code == EXIT_DATA_QUALITY:
            summary.stage(name, "skipped", "an earlier stage failed a data-quality check")
            continue
        run_downstream_stage(settings, summary, name, fn, progress)
    _conclude(settings, summary, progress)
    return summary


def downstream_stages() -> list[str]:
    return [name for name, _ in DOWNSTREAM] + ["publish"]


def raw_lines(settings: Settings) -> tuple[int, int]:
    """Purchase lines in the warehouse, and how many of them have a date."""
    with store(settings) as s:
        got = s.query(f"select count(*) as n, count(purchase_date) as n_dated "  # noqa: S608
                      f"from {s.relation('raw', 'purchases')}")
    return int(got["n"].iloc[0]), int(got["n_dated"].iloc[0])


def data_is_dated(settings: Settings) -> bool:
    return raw_lines(settings)[1] > 0


def transform_stage(settings: Settings, summary: RunSummary, progress: Progress = _noop) -> None:
    """dbt build (models + tests), then the data-quality results and report for the run.

    Every check of the run, the ingest contract's (e.g. a reject rate over half the file) and
    dbt's, goes to ``quality.dq_results``; a failing error-severity check (or a model that
    does not build) marks the run as a data-quality failure (exit 1): later stages are
    skipped and nothing is published."""
    from .transform import run_transform

    progress("transforming with dbt", None)
    started = warehouse.now()
    lines, n_dated = raw_lines(settings)
    result = run_transform(settings, summary.run_id, dated=n_dated > 0, lines=lines)
    checkpoint(settings, "transform:dbt-built", summary.run_id)
    record_transform(settings, summary, result, started)


def record_transform(settings: Settings, summary: RunSummary, result: TransformResult,
                     started: datetime) -> None:
    """Record what a dbt build did for the run: ``quality.dq_results`` and the report
    ``reports/<run id>/data_quality.html``, the stage in ``meta.run_log`` and the summary, and
    the run's exit code (1 when an error-severity check, dbt's or ingest's, failed or a model
    did not build).

    Shared by the CLI's transform stage and the Airflow DAG, which runs dbt one node per task
    and assembles the :class:`TransformResult` from the tasks' results."""
    from .transform import blocking_checks, write_quality_report, write_quality_results

    report = settings.reports_dir / summary.run_id / "data_quality.html"
    with store(settings) as s:
        write_quality_results(s, summary.run_id, summary.inputs, result)
        checkpoint(settings, "transform:quality-written", summary.run_id)
        write_quality_report(s, summary.run_id, report.parent)
        failed = blocking_checks(s, summary.run_id)
        ok = result.success and not failed
        warehouse.log_stage(s, summary.run_id, "transform", "ran" if ok else "failed",
                            started, rows=len(result.models_built),
                            detail=f"{len(result.tests)} tests, {len(failed)} failing")
    for name, reason in result.models_skipped:
        summary.stage(f"model:{name}", "skipped", reason)
    summary.stage("transform", "ran" if ok else "failed",
                  seconds=(warehouse.now() - started).total_seconds(),
                  models=len(result.models_built), tests=len(result.tests),
                  failing=[f"{c['check_name']}: {c['message']}" for c in failed],
                  warnings=[t["name"] for t in result.warnings], quality_report=str(report))
    if not ok:
        summary.exit_code = max(summary.exit_code, EXIT_DATA_QUALITY)
        for c in failed:
            detail = c["message"] or (f"{c['failing_rows']} failing rows"
                                      if c["failing_rows"] is not None else c["status"])
            summary.errors.append(f"data-quality check failed: {c['check_name']} ({detail})")
        if not failed:
            summary.errors.append("dbt build failed: " + (result.message or "see the dbt log"))


def predict_stage(settings: Settings, summary: RunSummary, progress: Progress = _noop) -> None:
    """CLV, churn and propensity models with model cards (see ``predict/``); imported when
    run so that commands which do not predict do not load scikit-learn."""
    from .predict.stage import predict_stage as run_predict

    run_predict(settings, summary, progress)


def publish_stage(settings: Settings, summary: RunSummary, progress: Progress = _noop) -> None:
    """Publish the finished warehouse for readers (see ``publish.py``)."""
    from .publish import copy_path, publish

    if summary.exit_code != EXIT_OK:
        summary.stage("publish", "skipped", "the run did not succeed; the previous "
                      "published warehouse stays in place")
        return
    if settings.target == "bigquery":
        summary.stage("publish", "skipped", "BigQuery: readers query the datasets in place; "
                      "there is no file to copy")
        return
    progress("publishing", None)
    t0 = time.perf_counter()
    record = summary.stage("publish", "ran", path=str(copy_path(settings, summary.run_id)))

    def record_outcome(copy: Path) -> None:
        record.seconds = round(time.perf_counter() - t0, 3)
        finish(settings, summary, path=copy)

    publish(settings, summary.run_id, finalise=record_outcome)
    record.seconds = round(time.perf_counter() - t0, 3)


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
    if not warehouse_exists(settings):
        raise UsageError(f"{settings.warehouse_uri}: no warehouse yet; run "
                         "'purchase-patterns run' first")
    summary = new_summary(settings, "report")
    _register(settings, summary)
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
    ("predict", predict_stage),
    ("analyze", analyze_stage),
    ("report", report_stage),
]

"""Task bodies and Airflow glue for the two DAGs in ``dags/``.

::

    ingest_to_lake            land ─┬─► announce      (outlet: the raw purchases asset)
                                    └─► check_files
    load_transform_validate   load ─► dbt (cosmos: per model a run task and a test task)
     (scheduled on the asset)  ─► record_quality ─► <each stage after transform> ─► publish

The DAG files only wire these functions together; everything they do is here and in
``pipeline``, so the CLI and Airflow run the same code with the same settings (``settings.py``:
``PURCHASE_PATTERNS_*`` environment variables or the YAML file, read by every task). The
functions that take and return plain values (``land``, ``check_files``, ``load``, ``run_stage``,
``finish_and_publish``) work without Airflow; the ones that need a task's context import
Airflow and cosmos lazily, so the package still works without the ``airflow`` extra.

How dbt's per-node results reach ``quality.dq_results``: every cosmos task runs one dbt
command; a cosmos ``callback`` (:func:`collect_dbt_results`) reads that command's
``run_results.json`` and ``manifest.json``, turns them into the same records the CLI's
transform stage gets from dbt's Python runner, and pushes them to XCom. ``record_quality``
runs when every dbt task is done, whatever their outcome (trigger rule ``all_done``), merges
the records with the tasks' final states and records them exactly as the CLI does
(``pipeline.record_transform``): results table, report, run log; it then fails when a check
of error severity failed or a model did not build, so nothing after it runs and the previous
published warehouse stays in place. XCom is Airflow's own channel between tasks, so this works
with any executor and worker layout, and a retried dbt task replaces its earlier record.

Retries: every task is idempotent, so a task retried after it did part of its work leaves
what one successful try would have. Landing is content-addressed; a batch is loaded all or
nothing and never twice, and a retried load reports the batches its earlier try loaded as
its own (``pipeline.load_pending``); dbt models and result tables are replaced; a task that
records something for the run (run log, data-quality results) first removes what an earlier
try recorded. Failures that a retry cannot fix (bad input, a failing data-quality check, a
model's SQL error) fail at once through the retry policy in :func:`default_args`; transient
ones (a busy warehouse, anything unexpected) are retried twice. The tests prove this by
failing tasks after part of their work with the ``fail_at`` setting (``faults.py``).

Targets: the tasks read ``settings.target`` like the CLI, so the same DAGs run on DuckDB and
on BigQuery (GCS lake); only the number of concurrent tasks differs
(:data:`MAX_ACTIVE_TASKS`), and publishing, which copies a DuckDB file, is skipped on BigQuery
with the reason.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from .errors import EXIT_OK, DataQualityError, PurchasePatternsError, StageError, UsageError
from .settings import Settings, load_settings

if TYPE_CHECKING:
    from .pipeline import RunSummary

log = logging.getLogger(__name__)

#: ``meta.runs.command`` of runs made by the DAGs.
COMMAND = "airflow"
#: The asset ``ingest_to_lake`` updates and ``load_transform_validate`` is scheduled on.
RAW_PURCHASES_ASSET = "purchase_patterns_raw_purchases"
#: How often ``ingest_to_lake`` looks into the inbox.
INBOX_SCHEDULE = "*/10 * * * *"
#: Inbox files changed more recently than this are left for the next look (still being copied).
INBOX_SETTLE_SECONDS = 30
LOAD_TASK_ID = "load"
DBT_GROUP_ID = "dbt"
#: The XCom key under which each dbt task leaves what its dbt command did.
DBT_RESULTS_KEY = "dbt_results"
#: The dbt profile name in ``transform/profiles.yml``.
DBT_PROFILE = "purchase_patterns"
#: Concurrent tasks per DAG run by warehouse: DuckDB allows one writer per file.
MAX_ACTIVE_TASKS = {"duckdb": 1, "bigquery": 4}


def settings_for(home: str | None = None) -> Settings:
    return load_settings(home=home or None)


def run_id_for(airflow_run_id: str) -> str:
    """The project's run id for an Airflow run id: the same text with characters that do not
    belong in a file name (``:``, ``+``) replaced, since it names ``reports/<run id>/`` and the
    published copy. Deterministic, so every try of every task of a DAG run agrees on it."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", airflow_run_id).strip("-")


def inbox(settings: Settings) -> Path:
    """The folder ``ingest_to_lake`` watches when no path is given: ``<home>/inbox``."""
    return settings.home / "inbox"


# -- ingest_to_lake -----------------------------------------------------------------------------


def land(path: str | None = None, home: str | None = None, fmt: str = "auto",
         mapping: str | None = None) -> dict[str, Any]:
    """Land a file, every file of a folder, or (no path) the settled files of the inbox in
    the lake. A file that cannot be used does not stop the others: it is reported under
    ``unusable`` (and moved from the inbox to ``inbox/rejected/`` with the reason beside it).

    Returns ``landed`` (one manifest excerpt per usable file), ``new`` (batch ids landed but
    not loaded yet: what ``announce`` tells the second DAG about) and ``unusable``."""
    from .pipeline import land_inputs

    settings = settings_for(home)
    watched = not path
    files = _settled_inbox_files(settings) if watched else _expand(Path(str(path)))
    landed: list[dict[str, Any]] = []
    unusable: list[dict[str, str]] = []
    for file in files:
        try:
            (entry,) = land_inputs(settings, [file], fmt=fmt or "auto",
                                   mapping=Path(mapping) if mapping else None)
        except PurchasePatternsError as exc:
            unusable.append({"file": str(file), "error": str(exc)})
            if watched:
                _quarantine(settings, file, str(exc))
            continue
        landed.append({k: entry.get(k)
                       for k in ("batch_id", "source_file", "format", "raw_uri", "status")})
    return {"landed": landed, "unusable": unusable,
            "new": [e["batch_id"] for e in landed if e["status"] == "landed"]}


def _expand(path: Path) -> list[Path]:
    from .ingest import expand_inputs

    return expand_inputs([path])


def _settled_inbox_files(settings: Settings) -> list[Path]:
    folder = inbox(settings)
    folder.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - INBOX_SETTLE_SECONDS
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.stat().st_mtime <= cutoff)


def _quarantine(settings: Settings, file: Path, error: str) -> None:
    """Move an unusable inbox file aside so that the next look does not fail on it again."""
    rejected = inbox(settings) / "rejected"
    rejected.mkdir(parents=True, exist_ok=True)
    os.replace(file, rejected / file.name)
    (rejected / f"{file.name}.error.txt").write_text(error + "\n", encoding="utf-8")


def announce(landed: dict[str, Any]) -> list[str]:
    """Succeed, and so emit an event of the raw purchases asset naming the new batches, only
    when there are batches waiting to be loaded; otherwise skip (no event, no second run)."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowSkipException

    new = list(landed.get("new") or [])
    if not new:
        raise AirflowSkipException("no new purchase files: the warehouse is up to date")
    get_current_context()["outlet_events"][raw_purchases_asset()].extra = {"batches": new}
    return new


def check_files(landed: dict[str, Any]) -> int:
    """Fail, naming them, when some files could not be used (the others are landed)."""
    bad = landed.get("unusable") or []
    if bad:
        raise UsageError(f"{len(bad)} file(s) could not be used: "
                         + "; ".join(b["error"] for b in bad))
    return len(landed.get("landed") or [])


# -- load_transform_validate: plain task bodies -------------------------------------------------


def load(run_id: str, home: str | None = None) -> dict[str, Any]:
    """Load every landed batch that is not in the warehouse yet. Returns the run summary so far
    (plus ``dated``: whether the data has purchase dates, which the dbt tasks need)."""
    from .pipeline import data_is_dated, load_pending, new_summary

    settings = settings_for(home)
    summary = new_summary(settings, COMMAND, run_id=run_id_for(run_id))
    _forget(settings, summary.run_id, "load")
    load_pending(settings, summary)
    if summary.exit_code != EXIT_OK and not any(i.get("rows_loaded") for i in summary.inputs):
        _record_failure(settings, summary)
        raise PurchasePatternsError("; ".join(summary.errors) or "nothing could be loaded")
    if not _has_purchases(settings):
        summary.errors.append("the warehouse holds no purchases yet")
        _record_failure(settings, summary)
        raise UsageError(f"the warehouse holds no purchases yet: put files in {inbox(settings)} "
                         "or trigger ingest_to_lake with a path")
    return _payload(summary) | {"dated": data_is_dated(settings)}


def stages_after_transform() -> list[str]:
    """The downstream stages the DAG runs as their own tasks after recording the transform,
    in pipeline order (read at parse time, so a newly registered stage gets a task)."""
    from .pipeline import DOWNSTREAM

    names = [name for name, _ in DOWNSTREAM]
    return names[names.index("transform") + 1:] if "transform" in names else names


def run_stage(name: str, summary: dict[str, Any], home: str | None = None) -> dict[str, Any]:
    """Run one downstream stage for the run (``summary``: the run so far, from the task
    before); fail the task when the stage does not succeed. Returns the run so far."""
    from .pipeline import DOWNSTREAM, run_downstream_stage

    settings = settings_for(home)
    run = summary_from_dict(summary)
    _forget(settings, run.run_id, name)
    try:
        run_downstream_stage(settings, run, name, dict(DOWNSTREAM)[name], _progress(name))
    except Exception as exc:
        run.errors.append(f"{name}: {exc}")
        run.exit_code = max(run.exit_code, getattr(exc, "exit_code", 1))
        _record_failure(settings, run)
        raise
    if run.exit_code != EXIT_OK:
        _record_failure(settings, run)
        raise DataQualityError("; ".join(run.errors) or f"stage {name} did not succeed")
    return _payload(run)


def finish_and_publish(summary: dict[str, Any], home: str | None = None) -> dict[str, Any]:
    """Record the run as succeeded and publish the warehouse for readers."""
    from .pipeline import finish, publish_stage

    settings = settings_for(home)
    run = summary_from_dict(summary)
    # the outcome is recorded before publishing, so that the published copy shows it
    finish(settings, run)
    publish_stage(settings, run)
    finish(settings, run)
    return _payload(run)


def summary_from_dict(data: dict[str, Any]) -> RunSummary:
    """Rebuild the :class:`~purchase_patterns.pipeline.RunSummary` a task got over XCom."""
    from dataclasses import fields

    from .pipeline import RunSummary, StageRecord

    names = {f.name for f in fields(RunSummary)}
    values = {k: v for k, v in data.items() if k in names}
    values["stages"] = [StageRecord(**s) for s in data.get("stages") or []]
    return RunSummary(**values)


def _payload(run: RunSummary) -> dict[str, Any]:
    """The run summary as plain JSON values, whatever a stage put in its details, so that it
    travels over XCom to the next task."""
    return json.loads(json.dumps(run.as_dict(), default=str))


def _progress(stage: str) -> Callable[[str, float | None], None]:
    def report(message: str, fraction: float | None = None) -> None:
        done = "" if fraction is None else f" ({fraction:.0%})"
        log.info("%s: %s%s", stage, message, done)

    return report


def _forget(settings: Settings, run_id: str, stage: str) -> None:
    """Remove what an earlier try of this stage recorded for the run (its ``meta.run_log``
    rows and, for the transform, its ``quality.dq_results`` rows), so a retry adds no
    duplicates."""
    from .datastore import store

    with store(settings) as s:
        s.execute(f"delete from {s.relation('meta', 'run_log')} "  # noqa: S608
                  "where run_id = @run_id and stage = @stage", {"run_id": run_id, "stage": stage})
        if stage == "transform" and s.has_table("quality", "dq_results"):
            s.execute(f"delete from {s.relation('quality', 'dq_results')} "  # noqa: S608
                      "where run_id = @run_id", {"run_id": run_id})


def _record_failure(settings: Settings, summary: RunSummary) -> None:
    from .pipeline import finish

    summary.exit_code = summary.exit_code or 1
    finish(settings, summary)


def _has_purchases(settings: Settings) -> bool:
    from .datastore import store

    with store(settings, read_only=True) as s:
        got = s.query(f"select count(*) as n from {s.relation('raw', 'purchases')}")  # noqa: S608
    return int(got["n"].iloc[0]) > 0


# -- Airflow glue -------------------------------------------------------------------------------


def raw_purchases_asset(settings: Settings | None = None) -> Any:
    """The Airflow asset for the raw purchases in the lake (``<lake>/raw``)."""
    from airflow.sdk import Asset

    lake = (settings or settings_for()).lake
    root = lake if "://" in lake else Path(lake).as_uri()
    return Asset(name=RAW_PURCHASES_ASSET, uri=f"{root}/raw")


def default_args() -> dict[str, Any]:
    """Arguments every task of both DAGs gets: two retries, but only for failures a retry can
    fix (see the module docstring)."""
    from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

    from .warehouse import WarehouseBusyError

    policy = ExceptionRetryPolicy(rules=[
        RetryRule(exception=WarehouseBusyError, action=RetryAction.RETRY,
                  reason="the warehouse is busy"),
        RetryRule(exception=PurchasePatternsError, action=RetryAction.FAIL,
                  reason="a data or input problem: a retry would fail the same way"),
    ])
    return {"owner": "purchase-patterns", "retries": 2, "retry_delay": timedelta(minutes=1),
            "retry_policy": policy}


def max_active_tasks(settings: Settings | None = None) -> int:
    return MAX_ACTIVE_TASKS[(settings or settings_for()).target]


def dbt_task_group(group_id: str = DBT_GROUP_ID, settings: Settings | None = None) -> Any:
    """The dbt project as a cosmos task group: per model a ``run`` task and a ``test`` task
    (its data and unit tests); tests that span several models get their own task after all of
    them. dbt runs in the worker's process (``dbtRunner``); the project is listed with
    ``dbt ls`` when the DAG is parsed (cosmos caches it). Call inside a DAG."""
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

    from .transform import profile_env, project_dir

    settings = settings or settings_for()
    project = project_dir(settings)
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(project, env_vars=profile_env(settings),
                                     install_dbt_deps=False),
        profile_config=ProfileConfig(profile_name=DBT_PROFILE, target_name=settings.target,
                                     profiles_yml_filepath=project / "profiles.yml"),
        execution_config=ExecutionConfig(execution_mode=ExecutionMode.LOCAL,
                                         invocation_mode=InvocationMode.DBT_RUNNER,
                                         # also what cosmos falls back to when PATH has no dbt
                                         dbt_executable_path=Path(sys.executable).with_name("dbt")),
        render_config=RenderConfig(load_method=LoadMode.DBT_LS,
                                   invocation_mode=InvocationMode.DBT_RUNNER,
                                   test_behavior=TestBehavior.AFTER_EACH,
                                   should_detach_multiple_parents_tests=True,
                                   emit_datasets=False),
        operator_args={"install_deps": False, "interceptors": [prepare_dbt_task],
                       "callback": collect_dbt_results},
    )


def prepare_dbt_task(context: Any, operator: Any) -> None:
    """cosmos interceptor, run before each dbt command: the profile's environment from the
    settings as the worker sees them, the run id in dbt's artifacts, and the vars the CLI
    gives dbt for the target and the data (``dated``: models that need purchase dates are
    disabled for data without dates; ``bigquery_emulator``, see ``transform.dbt_vars``)."""
    from .transform import dbt_vars, profile_env

    settings = settings_for()
    loaded = context["ti"].xcom_pull(task_ids=LOAD_TASK_ID) or {}
    operator.env = {**(operator.env or {}), **profile_env(settings),
                    "DBT_ENV_CUSTOM_ENV_PURCHASE_PATTERNS_RUN_ID": run_id_for(context["run_id"])}
    operator.vars = {**(operator.vars or {}),
                     **dbt_vars(settings, dated=bool(loaded.get("dated", True)))}


def collect_dbt_results(project_dir: str, context: Any = None, **_: Any) -> None:
    """cosmos callback, run after each dbt command: push what it did to XCom (models built,
    failed or skipped, seeds, one record per test as ``transform.TransformResult.tests``), then
    fail the task at once, with one line, when a model failed or an error-severity check
    failed, or skip it when the command selected nothing (a model disabled for undated data).
    """
    from airflow.sdk.exceptions import AirflowSkipException

    from .faults import checkpoint
    from .transform import DATED_REASON, TransformResult, collect_results, summarise
    from .warehouse import WarehouseBusyError

    ti, task = context["ti"], context["task"]
    run_id = run_id_for(context["run_id"])
    target = Path(project_dir) / "target"
    results = _read_json(target / "run_results.json")
    if results is None:  # dbt stopped before running anything: cosmos reports its error
        return
    part = TransformResult(success=True, run_id=run_id)
    collect_results(part, _ArtifactResult(results, _read_json(target / "manifest.json") or {}))
    record = {"seconds": float(results.get("elapsed_time") or 0.0),
              "models_built": part.models_built, "models_failed": part.models_failed,
              "models_skipped": part.models_skipped, "seeds_loaded": part.seeds_loaded,
              "tests": part.tests}
    node = (getattr(task, "extra_context", None) or {}).get("dbt_node_config") or {}
    skipped = None
    if not results.get("results"):
        dated = bool((task.vars or {}).get("dated", True))
        skipped = DATED_REASON if not dated else "disabled in the dbt project configuration"
        if node.get("resource_type") == "model" and task.base_cmd == ["run"]:
            record["models_skipped"] = [(node.get("name"), skipped)]
    ti.xcom_push(key=DBT_RESULTS_KEY, value=record)
    # the command's work is done and reported: where a crash test fails a dbt task
    checkpoint(settings_for(), f"dbt-task:{task.task_id}:done", run_id)
    if skipped:
        raise AirflowSkipException(f"{node.get('name', task.task_id)}: {skipped}")
    if any("could not set lock" in msg.lower() for _, msg in part.models_failed):
        raise WarehouseBusyError(f"{task.task_id}: the warehouse is in use by another process")
    if part.models_failed:
        raise StageError("; ".join(f"model {n} failed: {m}" for n, m in part.models_failed))
    if part.failed_checks:
        raise DataQualityError("; ".join(
            f"data-quality check failed: {t['name']} ({summarise(t['message'], 160)})"
            for t in part.failed_checks))


def record_quality(summary: dict[str, Any] | None,
                   group_id: str = DBT_GROUP_ID) -> dict[str, Any]:
    """Record the dbt tasks' results for the run as the CLI's transform stage does, then fail
    when the transform did not succeed. Runs when all dbt tasks are done, whatever their
    outcome; a model whose task did not run because an upstream task failed is reported as
    not built."""
    from airflow.sdk import get_current_context

    from . import warehouse
    from .pipeline import record_transform
    from .transform import UPSTREAM_REASON, TransformResult, failure_message

    if not summary:
        raise StageError("the load task did not succeed: there is nothing to record")
    context = get_current_context()
    ti, dag = context["ti"], context["dag"]
    states = ti.get_task_states(dag_id=ti.dag_id, task_group_id=group_id,
                                run_ids=[ti.run_id]).get(ti.run_id, {})
    settings = settings_for()
    run = summary_from_dict(summary)
    result = TransformResult(success=True, run_id=run.run_id,
                             dated=bool(summary.get("dated", True)))
    for task_id in sorted(states):
        state = str(states[task_id])
        record = ti.xcom_pull(task_ids=task_id, key=DBT_RESULTS_KEY) or {}
        result.seconds += record.get("seconds") or 0.0
        result.models_built += record.get("models_built") or []
        result.models_failed += [tuple(m) for m in record.get("models_failed") or []]
        result.models_skipped += [tuple(m) for m in record.get("models_skipped") or []]
        result.seeds_loaded += record.get("seeds_loaded") or []
        result.tests += record.get("tests") or []
        task = dag.get_task(task_id) if dag.has_task(task_id) else None
        node = (getattr(task, "extra_context", None) or {}).get("dbt_node_config") or {}
        if state == "failed":
            result.success = False
            if not record.get("models_failed") and not record.get("tests"):
                result.models_failed.append(
                    (node.get("name") or task_id, f"task {task_id} failed; see its log"))
        elif (state == "upstream_failed" and node.get("resource_type") == "model"
              and getattr(task, "base_cmd", None) == ["run"]):
            result.models_skipped.append((node["name"], UPSTREAM_REASON))
    if not result.success:
        result.message = failure_message(result)
    started = warehouse.now() - timedelta(seconds=result.seconds)
    _forget(settings, run.run_id, "transform")
    record_transform(settings, run, result, started)
    if run.exit_code != EXIT_OK:
        _record_failure(settings, run)
        raise DataQualityError("; ".join(run.errors))
    return _payload(run)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class _ArtifactResult:
    """dbt's ``run_results.json`` and ``manifest.json`` seen through the attributes of the
    result object dbt's Python runner returns, so that ``transform.collect_results`` (the CLI's
    reading of a dbt run) reads the artifacts of a cosmos task unchanged."""

    exception = None

    def __init__(self, run_results: dict[str, Any], manifest: dict[str, Any]) -> None:
        nodes = {**(manifest.get("nodes") or {}), **(manifest.get("unit_tests") or {})}
        self.result = SimpleNamespace(results=[
            SimpleNamespace(node=_node(r["unique_id"], nodes.get(r["unique_id"]) or {}),
                            status=r.get("status"), message=r.get("message"),
                            failures=r.get("failures"), execution_time=r.get("execution_time"))
            for r in run_results.get("results") or []
        ])


def _node(unique_id: str, raw: dict[str, Any]) -> SimpleNamespace:
    config = raw.get("config") or {}
    return SimpleNamespace(
        unique_id=unique_id, name=raw.get("name") or unique_id.split(".")[-1],
        resource_type=raw.get("resource_type") or unique_id.split(".")[0],
        schema=raw.get("schema"), alias=raw.get("alias"),
        attached_node=raw.get("attached_node"), model=raw.get("model"),
        config=SimpleNamespace(severity=config.get("severity") or "error",
                               store_failures=bool(config.get("store_failures"))),
    )

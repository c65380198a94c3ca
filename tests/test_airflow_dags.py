"""The two Airflow DAGs, run for real: parsed from ``dags/`` by Airflow 3.3 and executed with
``dag.test()`` (every task in this process against a SQLite metadata database set up in
``conftest.py``), dbt through astronomer-cosmos, on the real Kaggle file and the embedded
defaults (local-folder lake, DuckDB warehouse).

One module-scoped run feeds most tests: the Kaggle file is dropped in the watched inbox,
``ingest_to_lake`` lands it and announces it, ``load_transform_validate`` loads, transforms,
checks and publishes. The Kaggle file has no purchase dates, so the dbt tasks of the models
that need them are skipped with the reason, as the CLI does. The results are compared with the
CLI's transform on the same file.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airflow_helpers import DAGS, Run, drop, parse_dags, run_dag
from helpers import assert_same_marts, marts, query, scalar

from purchase_patterns import orchestration as orch
from purchase_patterns.lake import open_lake
from purchase_patterns.publish import current
from purchase_patterns.settings import load_settings
from purchase_patterns.transform import DATED_REASON, UPSTREAM_REASON

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parents[1]
FIRST = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
SECOND = datetime(2026, 1, 6, 6, 0, tzinfo=UTC)
THIRD = datetime(2026, 1, 7, 6, 0, tzinfo=UTC)
DATED_MODELS = {"agg_sales_by_month", "agg_sales_by_week", "agg_sales_by_weekday",
                "agg_cohort_retention"}
#: tables whose row counts must not change when the DAGs run again
COUNTED = ["raw.purchases", "raw.rejects", "raw.batches", "marts.fct_purchases",
           "marts.dim_customers", "marts.dim_products", "marts.customer_features",
           "marts.agg_sales_by_season"]


@dataclass
class Flow:
    home: Path
    ingest: Run
    load: Run
    run_id: str
    counts: dict[str, int]
    dq_rows: int
    run_log: list[tuple]
    #: the clean run's quality results and full run log, as they were right after it (later
    #: tests re-run parts of the DAG in this home)
    checks: list[tuple]
    log: list[tuple]


CHECKS = "select check_name, source, severity, status from quality.dq_results " \
         "where run_id = ? order by all"
LOG = "select stage, status, rows, detail from meta.run_log where run_id = ? order by all"


def _counts(db: Path) -> dict[str, int]:
    return {t: scalar(db, f"select count(*) from {t}") for t in COUNTED}


def _asset_events() -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [dict(e or {}) for e in session.scalars(
            select(AssetEvent.extra).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == orch.RAW_PURCHASES_ASSET))]


@pytest.fixture(scope="module")
def flow(airflow_db, tmp_path_factory, kaggle_csv) -> Iterator[Flow]:
    """The Kaggle file through both DAGs, from the inbox to the published warehouse."""
    home = tmp_path_factory.mktemp("airflow-flow") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PURCHASE_PATTERNS_HOME", str(home))
        dags = parse_dags()
        drop(orch.inbox(load_settings()), kaggle_csv)
        ingest = run_dag(dags["ingest_to_lake"])
        load = run_dag(dags["load_transform_validate"], FIRST)
        db = home / "warehouse.duckdb"
        run_id = scalar(db, "select run_id from meta.runs")
        yield Flow(home, ingest, load, run_id, _counts(db),
                   scalar(db, "select count(*) from quality.dq_results where run_id = ?",
                          [run_id]),
                   query(db, "select stage, status from meta.run_log where run_id = ? "
                             "order by all", [run_id]),
                   query(db, CHECKS, [run_id]), query(db, LOG, [run_id]))


def test_dags_parse_with_tags_retries_and_no_work_at_parse_time(airflow_db, tmp_path,
                                                               monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("PURCHASE_PATTERNS_HOME", str(home))
    dags = parse_dags()
    assert set(dags) == {"ingest_to_lake", "load_transform_validate"}
    for dag in dags.values():
        assert "purchase-patterns" in dag.tags and len(dag.tags) >= 2
        assert dag.catchup is False
        assert dag.max_active_runs == 1
        for task in dag.tasks:
            assert task.retries >= 2, task.task_id
            assert task.retry_policy is not None, task.task_id
    # parsing reads settings and lists the dbt project; it touches no data
    assert not (home / "warehouse.duckdb").exists()
    assert not (home / "lake").exists()

    ingest, ltv = dags["ingest_to_lake"], dags["load_transform_validate"]
    asset = orch.raw_purchases_asset(load_settings())
    assert ingest.get_task("announce").outlets == [asset]
    assert list(ltv.timetable.asset_condition.objects) == [asset]
    assert set(ingest.params) == {"path", "format", "mapping"}

    # one writer at a time on the DuckDB warehouse
    assert ltv.max_active_tasks == 1
    ids = set(ltv.task_dict)
    models = {p.stem for p in (REPO / "transform" / "models").rglob("*.sql")}
    assert {f"dbt.{m}.run" for m in models} <= ids
    assert {f"dbt.{m}.test" for m in models} <= ids
    assert {"dbt.us_states.seed", "dbt.purchase_frequencies.seed"} <= ids
    # tests that span models run after all of them, in their own task
    assert "dbt.assert_aggregates_reconcile_with_facts_test" in ids
    # one task per stage after the transform, as registered in the pipeline, then publish
    chain = ["record_quality", *orch.stages_after_transform(), "publish"]
    assert {t for t in ids if not t.startswith("dbt.")} == {"load", *chain}
    for before, after in zip(chain, chain[1:], strict=False):
        assert ltv.get_task(before).downstream_task_ids == {after}
    assert ltv.get_task("record_quality").trigger_rule == "all_done"
    assert ltv.get_task("record_quality").upstream_task_ids >= {
        "load", "dbt.assert_aggregates_reconcile_with_facts_test"}
    assert any(t.startswith("dbt.") for t in ltv.get_task("load").downstream_task_ids)


def test_dags_parse_for_the_cloud_target(airflow_db, tmp_path, monkeypatch):
    """With ``target: bigquery`` in the settings the same DAG files give a DAG for the cloud:
    concurrent tasks, the asset in the GCS lake, dbt on the BigQuery profile. (They run on the
    emulators in ``tests/cloud/test_cloud_airflow.py``.)"""
    monkeypatch.setenv("PURCHASE_PATTERNS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PURCHASE_PATTERNS_TARGET", "bigquery")
    monkeypatch.setenv("PURCHASE_PATTERNS_GCP__PROJECT", "some-project")
    monkeypatch.setenv("PURCHASE_PATTERNS_GCP__BUCKET", "some-bucket")
    ingest, ltv = (parse_dags()[d] for d in ("ingest_to_lake", "load_transform_validate"))
    assert ltv.max_active_tasks == orch.MAX_ACTIVE_TASKS["bigquery"] > 1
    [asset] = ingest.get_task("announce").outlets
    assert asset.uri == "gs://some-bucket/raw"
    assert list(ltv.timetable.asset_condition.objects) == [asset]
    dbt_tasks = [t for t in ltv.tasks if t.task_id.startswith("dbt.")]
    assert len(dbt_tasks) > 40
    assert {t.profile_config.target_name for t in dbt_tasks} == {"bigquery"}
    assert not (tmp_path / "home" / "warehouse.duckdb").exists()


def test_retries_only_for_failures_a_retry_can_fix():
    from airflow.sdk import RetryAction

    from purchase_patterns.errors import DataQualityError, InputFileError
    from purchase_patterns.warehouse import WarehouseBusyError

    policy = orch.default_args()["retry_policy"]
    busy = WarehouseBusyError("warehouse.duckdb: warehouse is in use by another process")
    assert policy.evaluate(busy, 1, 3).action == RetryAction.RETRY
    for exc in (DataQualityError("check failed"), InputFileError("a.csv", "empty file")):
        assert policy.evaluate(exc, 1, 3).action == RetryAction.FAIL
    assert policy.evaluate(OSError("disk full"), 1, 3).action == RetryAction.DEFAULT


def test_dag_files_only_wire_package_functions():
    """The DAG files import Airflow and the package's orchestration, nothing that does work;
    every task body is one call into ``purchase_patterns.orchestration``."""
    allowed = {"__future__", "datetime", "typing", "airflow.sdk", "purchase_patterns",
               "purchase_patterns.sources"}
    for path in DAGS.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert imported <= allowed, (path.name, imported - allowed)
        tasks = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                 and any(ast.unparse(d).split("(")[0].split(".")[0] == "task"
                         for d in f.decorator_list)]
        assert tasks, path.name
        for fn in tasks:
            body = [b for b in fn.body if not isinstance(b, ast.Expr)]  # docstrings aside
            assert len(body) == 1 and isinstance(body[0], ast.Return), (path.name, fn.name)
            assert ast.unparse(body[0].value).startswith("orch."), (path.name, fn.name)


def test_both_dags_build_and_publish_the_warehouse(flow, kaggle_csv):
    assert flow.ingest.state == "success", flow.ingest.tasks
    assert flow.load.state == "success", {
        t: s for t, s in flow.load.tasks.items() if s[0] not in ("success", "skipped")}
    # the new file was announced to the second DAG through the asset, naming its batch
    sha = hashlib.sha256(kaggle_csv.read_bytes()).hexdigest()
    assert {"batches": [sha]} in _asset_events()
    # every task succeeded at the first try, except the models that need dates: skipped
    for task_id, (state, tries) in flow.load.tasks.items():
        model = task_id.split(".")[1] if task_id.startswith("dbt.") else None
        expected = "skipped" if model in DATED_MODELS else "success"
        assert state == expected, task_id
        assert tries <= 1, task_id

    # the warehouse holds exactly the file, checked against the file itself
    with kaggle_csv.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    total = sum(Decimal(r["Purchase Amount (USD)"]) for r in rows)
    customers = len({r["Customer ID"] for r in rows})
    db = flow.home / "warehouse.duckdb"
    assert flow.counts["raw.purchases"] == flow.counts["marts.fct_purchases"] == len(rows)
    assert flow.counts["raw.rejects"] == 0
    assert flow.counts["marts.dim_customers"] == customers
    assert scalar(db, "select sum(amount) from marts.fct_purchases") == total
    assert scalar(db, "select sum(revenue) from marts.agg_sales_by_season") == total
    assert scalar(db, "select count(*) from information_schema.tables "
                      "where table_schema = 'marts' and table_name = 'agg_sales_by_month'") == 0

    # the run is recorded as the CLI records it
    assert query(db, "select status, exit_code, command from meta.runs") == [
        ("succeeded", 0, "airflow")]
    summary = json.loads(scalar(db, "select summary from meta.runs"))
    stages = {s["name"]: s for s in summary["stages"]}
    assert [s for s in ("load", "transform", *orch.stages_after_transform(), "publish")
            if stages.get(s, {}).get("status") != "ran"] == []
    for model in DATED_MODELS - {"agg_cohort_retention"}:
        assert stages[f"model:{model}"]["status"] == "skipped"
        assert stages[f"model:{model}"]["reason"] == DATED_REASON
    assert summary["inputs"][0]["rows_loaded"] == len(rows)
    assert ("load", "ran") in flow.run_log and ("transform", "ran") in flow.run_log

    # data-quality results and report for the run
    assert query(db, "select distinct status from quality.dq_results where run_id = ?",
                 [flow.run_id]) == [("pass",)]
    report = flow.home / "reports" / flow.run_id / "data_quality.html"
    assert report.exists()
    verdict = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))
    assert verdict["passed"] is True and verdict["counts"] == {"pass": flow.dq_rows}

    # published for readers, with the marts
    published = current(load_settings(home=flow.home))
    assert published is not None and flow.run_id in published.name
    assert scalar(published, "select count(*) from marts.fct_purchases") == len(rows)


def test_the_dag_records_the_same_checks_and_marts_as_the_cli(flow, built_home):
    cli = built_home("kaggle") / "warehouse.duckdb"
    db = flow.home / "warehouse.duckdb"
    checks = "select check_name, source, severity, status from quality.dq_results order by all"
    ours = query(db, checks)
    assert ours == query(cli, checks)
    assert sum(1 for c in ours if c[1] == "dbt") > 50
    for table in ("marts.customer_features", "marts.agg_sales_by_state",
                  "marts.agg_promotion_effects"):
        sql = f"select * from {table} order by all"
        assert _rounded(query(db, sql)) == _rounded(query(cli, sql)), table


def _rounded(rows: list[tuple]) -> list[tuple]:
    """Floats to 12 significant digits: DuckDB sums doubles in parallel, in no fixed order."""
    return [tuple(float(f"{v:.12g}") if isinstance(v, float) else v for v in row)
            for row in rows]


def test_running_both_dags_again_adds_nothing(flow, kaggle_csv, monkeypatch):
    monkeypatch.setenv("PURCHASE_PATTERNS_HOME", str(flow.home))
    inbox = orch.inbox(load_settings())
    lake_files = sorted((flow.home / "lake").rglob("*"))
    # the same file again, a file that cannot be used, and one still being copied
    drop(inbox, kaggle_csv, "again.csv")
    drop(inbox, REPO / "pyproject.toml", "notes.csv")
    drop(inbox, kaggle_csv, "arriving.csv", settled=False)
    dags = parse_dags()
    ingest = run_dag(dags["ingest_to_lake"])
    assert ingest.state_of("land") == "success"
    assert ingest.state_of("announce") == "skipped"  # nothing new: no event, no second run
    assert ingest.state_of("check_files") == "failed"
    assert ingest.tasks["check_files"][1] == 1  # not retried: a retry cannot fix the file
    assert len(_asset_events()) == 1
    assert (inbox / "rejected" / "notes.csv").exists()
    assert "notes.csv" in (inbox / "rejected" / "notes.csv.error.txt").read_text()
    assert (inbox / "arriving.csv").exists()
    assert sorted((flow.home / "lake").rglob("*")) == lake_files

    # the first run again (same run id), as retries after complete work would be: its own
    # tasks for real, and of the dbt project the seeds, the staging models, the facts and the
    # reconciliation tests (the other dbt tasks, identical in kind, are marked done to keep
    # this test short)
    rerun = r"dbt\.(?!(purchase_frequencies|us_states|stg_\w+|int_purchases_enriched|fct_purchases)\.|assert_).*"
    load = run_dag(dags["load_transform_validate"], FIRST, mark_success_pattern=rerun)
    assert load.state == "success"
    for task_id in ("load", "dbt.stg_warehouse__purchases.run", "dbt.fct_purchases.test",
                    "dbt.assert_purchase_counts_reconcile_test", "record_quality", "publish"):
        assert load.tasks[task_id] == ("success", 1), task_id
    db = flow.home / "warehouse.duckdb"
    assert _counts(db) == flow.counts
    checks = query(db, "select check_name, status from quality.dq_results where run_id = ?",
                   [flow.run_id])
    assert len(checks) == len({c for c, _ in checks}) > 20  # replaced, not added to
    assert {s for _, s in checks} == {"pass"}
    assert query(db, "select stage, status from meta.run_log where run_id = ? order by all",
                 [flow.run_id]) == flow.run_log
    assert query(db, "select run_id, status from meta.runs") == [(flow.run_id, "succeeded")]
    summary = json.loads(scalar(db, "select summary from meta.runs"))
    names = [s["name"] for s in summary["stages"]]
    assert len(names) == len(set(names))
    # the batch was loaded by the first try; its ingest checks are still the run's
    assert summary["inputs"][0]["rows_loaded"] == flow.counts["raw.purchases"]
    assert ("ingest shopping_trends.csv: reject rate", "pass") in checks


#: Where the retry test fails a task once, after part of its work (``settings.fail_at``):
#: the load, after its batch was committed to the warehouse but before the lake's manifest
#: marks it loaded and before the stage is logged; a dbt test task, after its tests ran and
#: their results went to XCom; the quality task, after it wrote the run's ``dq_results`` but
#: before the report and the run log.
FAULTS = {
    "load": "load:shopping_trends.csv:loading: committed",
    "dbt.fct_purchases.test": "dbt-task:dbt.fct_purchases.test:done",
    "record_quality": "transform:quality-written",
}
#: the later stages are not what the retry test is about: marked done, not run, to keep it short
LATER = "|".join([*orch.stages_after_transform(), "publish"])


def test_tasks_retried_after_partial_work_leave_exactly_one_run(flow, kaggle_csv, tmp_path,
                                                                monkeypatch):
    home, marks = tmp_path / "home", tmp_path / "checkpoints.txt"
    monkeypatch.setenv("PURCHASE_PATTERNS_HOME", str(home))
    monkeypatch.setenv("PURCHASE_PATTERNS_CHECKPOINT_FILE", str(marks))
    monkeypatch.setenv("PURCHASE_PATTERNS_FAIL_AT", json.dumps(list(FAULTS.values())))
    settings = load_settings()
    orch.land(str(kaggle_csv))

    load = run_dag(parse_dags()["load_transform_validate"], THIRD,
                   retry_delay=timedelta(0), mark_success_pattern=LATER)

    assert load.state == "success", {t: s for t, s in load.tasks.items()
                                     if s[0] not in ("success", "skipped")}
    # each fault struck once, and Airflow retried its task, which then succeeded
    failed = [line.split(" ", 4)[4] for line in marks.read_text().splitlines()
              if line.split(" ")[3] == "failed"]
    assert sorted(failed) == sorted(FAULTS.values())
    for task_id, (state, tries) in load.tasks.items():
        assert state in ("success", "skipped"), task_id
        assert tries == 2 if task_id in FAULTS else tries <= 1, task_id

    db = home / "warehouse.duckdb"
    run_id = orch.run_id_for(f"manual__{THIRD.isoformat()}")
    # the file's rows once, one batch, marked loaded in the lake by the retry
    assert _counts(db) == flow.counts
    assert query(db, "select run_id, rows_loaded from raw.batches") == [
        (run_id, flow.counts["raw.purchases"])]
    [entry] = open_lake(settings).manifest()
    assert (entry["status"], entry["run_id"], entry["rows_loaded"]) == (
        "loaded", run_id, flow.counts["raw.purchases"])
    # one set of quality results and one run log for the run, as in the clean run
    assert query(db, CHECKS, [run_id]) == flow.checks
    assert scalar(db, "select count(*) from quality.dq_results") == flow.dq_rows
    assert query(db, LOG, [run_id]) == [r for r in flow.log if r[0] in ("load", "transform")]
    assert scalar(db, "select count(*) from meta.run_log") == 2
    assert query(db, "select run_id from meta.runs") == [(run_id,)]
    verdict = json.loads((home / "reports" / run_id / "data_quality.json").read_text())
    assert verdict["passed"] is True and verdict["counts"] == {"pass": flow.dq_rows}
    # and the marts of the clean run
    assert_same_marts(marts(load_settings(home=flow.home)), marts(settings))


def test_a_failing_model_fails_its_task_and_keeps_the_published_marts(flow, tmp_path,
                                                                      monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(flow.home, home)
    project = tmp_path / "transform"
    shutil.copytree(REPO / "transform", project,
                    ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    broken = project / "models" / "intermediate" / "int_purchases_enriched.sql"
    broken.write_text("select no_such_column from {{ ref('stg_warehouse__purchases') }}\n",
                      encoding="utf-8")
    monkeypatch.setenv("PURCHASE_PATTERNS_HOME", str(home))
    monkeypatch.setenv("PURCHASE_PATTERNS_DBT_PROJECT_DIR", str(project))
    settings = load_settings()
    before = current(settings)
    assert before is not None
    digest = hashlib.sha256(before.read_bytes()).hexdigest()

    load = run_dag(parse_dags()["load_transform_validate"], SECOND)

    assert load.state == "failed"
    # the broken model's task failed, at once (a retry cannot fix SQL), and only it
    assert load.tasks["dbt.int_purchases_enriched.run"] == ("failed", 1)
    assert {t for t, (s, _) in load.tasks.items() if s == "failed"} == {
        "dbt.int_purchases_enriched.run", "record_quality"}
    assert load.state_of("dbt.stg_warehouse__purchases.run") == "success"
    assert load.state_of("dbt.fct_purchases.run") == "upstream_failed"
    for task_id in (*orch.stages_after_transform(), "publish"):
        assert load.state_of(task_id) == "upstream_failed"

    # nothing was published: the previous copy is still the current one, unchanged
    assert current(settings) == before
    assert hashlib.sha256(before.read_bytes()).hexdigest() == digest
    assert scalar(before, "select count(*) from marts.fct_purchases") == \
        flow.counts["marts.fct_purchases"]
    # and the working warehouse kept its marts too (dbt replaces a table only when it builds)
    db = home / "warehouse.duckdb"
    assert scalar(db, "select count(*) from marts.fct_purchases") == \
        flow.counts["marts.fct_purchases"]

    # the failure is recorded for the run, as the CLI records it
    run_id = orch.run_id_for(f"manual__{SECOND.isoformat()}")
    assert query(db, "select status, exit_code from meta.runs where run_id = ?", [run_id]) == [
        ("failed_quality", 1)]
    failed = query(db, "select check_name, status, message from quality.dq_results "
                       "where run_id = ? and status <> 'pass'", [run_id])
    assert [(c, s) for c, s, _ in failed] == [("model int_purchases_enriched builds", "error")]
    assert "no_such_column" in failed[0][2]
    summary = json.loads(scalar(db, "select summary from meta.runs where run_id = ?", [run_id]))
    skipped = {s["name"]: s["reason"] for s in summary["stages"] if s["status"] == "skipped"}
    assert skipped["model:fct_purchases"] == UPSTREAM_REASON
    assert (home / "reports" / run_id / "data_quality.html").exists()

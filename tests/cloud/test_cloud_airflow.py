"""Both Airflow DAGs on the cloud target, run for real with ``dag.test()`` against the GCS and
BigQuery emulators: the settings say ``target: bigquery`` (environment variables, as a worker
would get them), ``ingest_to_lake`` lands the real Kaggle file from the watched inbox in the
GCS lake, ``load_transform_validate`` loads it into BigQuery, runs every dbt model and test
through cosmos on the BigQuery profile, records the checks, runs each later stage, and
finishes the run (there is no file to publish on BigQuery). The marts hold the numbers of the
CLI's DuckDB run of the same file; the run log and the quality results are in BigQuery."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from airflow_helpers import Run, drop, parse_dags, restored_environ, run_dag
from helpers import assert_same_marts, marts, query

from purchase_patterns import orchestration as orch
from purchase_patterns.datastore import store
from purchase_patterns.lake import open_lake
from purchase_patterns.settings import Settings, load_settings

pytestmark = [pytest.mark.cloud_full, pytest.mark.airflow]

AT = datetime(2026, 2, 2, 6, 0, tzinfo=UTC)
#: the Kaggle file has no purchase dates: these models are disabled, their tasks skipped
DATED_MODELS = {"agg_sales_by_month", "agg_sales_by_week", "agg_sales_by_weekday",
                "agg_cohort_retention"}


@dataclass
class CloudFlow:
    settings: Settings
    dags: dict
    ingest: Run
    load: Run
    run_id: str


@pytest.fixture(scope="module")
def cloud_flow(airflow_db, emulators, kaggle_csv, tmp_path_factory) -> CloudFlow:
    """The Kaggle file through both DAGs on the emulators. The target is set in the
    environment only while the DAGs are parsed and run: the tests pass the settings on."""
    dataset = f"airflow_{uuid.uuid4().hex[:6]}"
    home = tmp_path_factory.mktemp("cloud-airflow") / "home"
    with restored_environ(), pytest.MonkeyPatch.context() as mp:
        for key, value in emulators.env(dataset).items():
            mp.setenv(key, value)
        mp.setenv("PURCHASE_PATTERNS_TARGET", "bigquery")
        mp.setenv("PURCHASE_PATTERNS_HOME", str(home))
        settings = load_settings()
        dags = parse_dags()
        drop(orch.inbox(settings), kaggle_csv)
        ingest = run_dag(dags["ingest_to_lake"])
        load = run_dag(dags["load_transform_validate"], AT)
    return CloudFlow(settings, dags, ingest, load, orch.run_id_for(f"manual__{AT.isoformat()}"))


def test_both_dags_run_on_the_cloud_target(cloud_flow, kaggle_csv):
    settings = cloud_flow.settings
    assert settings.target == "bigquery"
    ltv = cloud_flow.dags["load_transform_validate"]
    # BigQuery takes concurrent jobs: the tasks of a run need not take turns as on DuckDB
    assert ltv.max_active_tasks == orch.MAX_ACTIVE_TASKS["bigquery"] > 1
    assert str(orch.raw_purchases_asset(settings).uri).startswith(f"{settings.lake}/raw")
    assert settings.lake.startswith("gs://")

    assert cloud_flow.ingest.state == "success", cloud_flow.ingest.tasks
    assert cloud_flow.load.state == "success", {
        t: s for t, s in cloud_flow.load.tasks.items() if s[0] not in ("success", "skipped")}
    for task_id, (state, tries) in cloud_flow.load.tasks.items():
        model = task_id.split(".")[1] if task_id.startswith("dbt.") else None
        assert state == ("skipped" if model in DATED_MODELS else "success"), task_id
        assert tries <= 1, task_id

    # the lake is in GCS, holding the file unchanged; nothing was written to a local warehouse
    [entry] = open_lake(settings).manifest()
    assert entry["status"] == "loaded" and entry["run_id"] == cloud_flow.run_id
    assert entry["raw_uri"].startswith(f"{settings.lake}/raw/source=kaggle/")
    assert open_lake(settings).fs.cat(entry["raw_uri"]) == kaggle_csv.read_bytes()
    assert not settings.warehouse_path.exists()


def test_the_marts_hold_the_numbers_of_the_duckdb_run(cloud_flow, built_home):
    duck = marts(load_settings(home=built_home("kaggle")))
    assert len(duck) == 10  # the undated marts
    assert_same_marts(duck, marts(cloud_flow.settings))


def test_run_log_and_quality_results_landed_in_bigquery(cloud_flow, built_home):
    settings, run_id = cloud_flow.settings, cloud_flow.run_id
    with store(settings, read_only=True) as s:
        runs = s.query(f"select run_id, status, exit_code, command, summary "  # noqa: S608
                       f"from {s.relation('meta', 'runs')}")
        log = s.query(f"select stage, status from {s.relation('meta', 'run_log')} "  # noqa: S608
                      "where run_id = @run_id order by started_at", {"run_id": run_id})
        dq = s.query(f"select check_name, source, severity, status "  # noqa: S608
                     f"from {s.relation('quality', 'dq_results')} where run_id = @run_id",
                     {"run_id": run_id})
        counts = s.query(
            f"select (select count(*) from {s.relation('raw', 'purchases')}) as purchases, "  # noqa: S608
            f"(select count(*) from {s.relation('raw', 'batches')}) as batches").iloc[0]
    assert runs[["run_id", "status", "exit_code", "command"]].values.tolist() == [
        [run_id, "succeeded", 0, "airflow"]]
    summary = json.loads(runs["summary"][0])
    stages = {st["name"]: st for st in summary["stages"]}
    assert stages["publish"]["status"] == "skipped" and "BigQuery" in stages["publish"]["reason"]
    assert summary["warehouse"] == settings.warehouse_uri
    assert log.values.tolist() == [[name, "ran"] for name in
                                   ("load", "transform", *orch.stages_after_transform())]
    assert (counts["purchases"], counts["batches"]) == (3900, 1)

    # the same checks as the CLI's DuckDB run of the file, all passing, each once
    cli = built_home("kaggle") / "warehouse.duckdb"
    expected = query(cli, "select check_name, source, severity, status from quality.dq_results "
                          "order by all")
    got = sorted(tuple(r) for r in dq.itertuples(index=False))
    assert got == expected and len(got) > 100
    report = json.loads((settings.reports_dir / run_id / "data_quality.json").read_text())
    assert report["passed"] is True and report["counts"] == {"pass": len(got)}


def test_nothing_is_published_as_a_file(cloud_flow):
    from purchase_patterns.publish import current

    assert current(cloud_flow.settings) is None
    assert not any(Path(cloud_flow.settings.home).rglob("*.duckdb"))

"""``purchase-patterns run --target bigquery`` end to end on the emulators, on the real files:
the marts hold the same numbers as the DuckDB run of the same file, a re-run adds nothing, a
half-loaded batch is cleaned up, the run log and quality results live in BigQuery, the lake
lives in GCS, and the service-account key path never shows up anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import assert_same_marts, marts

from purchase_patterns.datastore import store
from purchase_patterns.lake import open_lake
from purchase_patterns.pipeline import DOWNSTREAM
from purchase_patterns.settings import load_settings

pytestmark = pytest.mark.cloud

CLI = str(Path(sys.executable).with_name("purchase-patterns"))
SECRET_MARKER = "SECRET-MARKER-7f3a"
#: the stages a run logs in meta.run_log, in order (publish is skipped on BigQuery)
RUN_STAGES = ["ingest", *(name for name, _ in DOWNSTREAM)]


def cli(*args: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PURCHASE_PATTERNS_")}
    return subprocess.run([CLI, *args], env=base | env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def fact_table_ddl(settings) -> str:
    """The statement dbt ran to build marts.fct_purchases. The emulator runs partitioned and
    clustered CREATE TABLE AS but does not keep that in the table's metadata, so the check is
    on what BigQuery was sent."""
    path = (settings.home / ".dbt" / "target" / "run" / "purchase_patterns" / "models"
            / "marts" / "fct_purchases.sql")
    return " ".join(path.read_text(encoding="utf-8").split())


def _run(cloud_settings, emulators, name: str, data: Path):
    settings = cloud_settings(name)
    env = emulators.env(settings.gcp.dataset) | {
        # never read (anonymous wins), but handed around as the secret it is: it must not
        # show up in any output, file or table
        "PURCHASE_PATTERNS_GCP__CREDENTIALS_FILE": f"/nowhere/{SECRET_MARKER}.json",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
    proc = cli("--home", str(settings.home), "--target", "bigquery", "--json", "run",
               "-i", str(data), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return settings, json.loads(proc.stdout), proc, env


@pytest.fixture(scope="module")
def kaggle_run(cloud_settings, emulators, kaggle_csv):
    return _run(cloud_settings, emulators, "kaggle", kaggle_csv)


def test_kaggle_marts_match_duckdb(kaggle_run, built_home):
    settings, summary, _, _ = kaggle_run
    stages = {s["name"]: s for s in summary["stages"]}
    assert stages["ingest"]["status"] == "ran" and stages["transform"]["status"] == "ran"
    assert stages["transform"]["detail"]["failing"] == []
    assert stages["publish"]["status"] == "skipped" and "BigQuery" in stages["publish"]["reason"]
    assert summary["warehouse"] == f"bigquery://test-project/{settings.gcp.dataset}_*"
    assert summary["lake"] == f"gs://test-lake/{settings.gcp.dataset}"
    [batch] = summary["inputs"]
    assert (batch["rows_in"], batch["rows_loaded"], batch["rows_rejected"]) == (3900, 3900, 0)
    duck = marts(load_settings(home=built_home("kaggle")))
    assert len(duck) == 10  # the undated marts: week, month, weekday, cohort are disabled
    assert_same_marts(duck, marts(settings))


def test_capabilities_read_the_same_from_bigquery(kaggle_run, built_home):
    """Code written against DataStore (here: deciding what the data supports) runs unchanged
    on BigQuery and decides the same."""
    from purchase_patterns.capabilities import decide, profile

    settings, _, _, _ = kaggle_run
    with store(settings, read_only=True) as s:
        on_bigquery = profile(s)
    with store(load_settings(home=built_home("kaggle")), read_only=True) as s:
        on_duckdb = profile(s)
    assert on_bigquery == on_duckdb and not on_bigquery.dated
    assert decide(on_bigquery) == decide(on_duckdb)


def test_rerun_from_settings_file_adds_nothing(kaggle_run, kaggle_csv, tmp_path):
    """The target can come from the settings file instead of --target; loading the same
    file again is recognised and adds nothing."""
    settings, _, _, env = kaggle_run
    gcp = {k.removeprefix("PURCHASE_PATTERNS_GCP__").lower(): v for k, v in env.items()
           if k.startswith("PURCHASE_PATTERNS_GCP__")}
    config = tmp_path / "purchase-patterns.yaml"
    config.write_text(yaml.safe_dump({"target": "bigquery", "lake_url": settings.lake,
                                      "gcp": gcp}), encoding="utf-8")
    proc = cli("--home", str(settings.home), "--config", str(config), "--json", "ingest",
               "-i", str(kaggle_csv), env={"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    [again] = json.loads(proc.stdout)["inputs"]
    assert again["duplicate_skipped"] is True and again["rows_loaded"] == 3900
    with store(settings, read_only=True) as s:
        counts = s.query(
            f"select (select count(*) from {s.relation('raw', 'purchases')}) as purchases, "  # noqa: S608
            f"(select count(*) from {s.relation('raw', 'batches')}) as batches, "
            f"(select count(*) from {s.relation('raw', 'rejects')}) as rejects").iloc[0]
    assert (counts["purchases"], counts["batches"], counts["rejects"]) == (3900, 1, 0)
    assert [e["status"] for e in open_lake(settings).manifest()] == ["loaded"]


def test_run_log_and_quality_results_in_bigquery(kaggle_run):
    settings, summary, _, _ = kaggle_run
    run_id = summary["run_id"]
    with store(settings, read_only=True) as s:
        runs = s.query(f"select status, exit_code, summary from {s.relation('meta', 'runs')} "  # noqa: S608
                       "where run_id = @run_id", {"run_id": run_id})
        stages = s.query(f"select stage, status from {s.relation('meta', 'run_log')} "  # noqa: S608
                         "where run_id = @run_id order by started_at", {"run_id": run_id})
        dq = s.query(f"select source, status, severity from {s.relation('quality', 'dq_results')} "  # noqa: S608
                     "where run_id = @run_id", {"run_id": run_id})
    assert (runs["status"][0], runs["exit_code"][0]) == ("succeeded", 0)
    assert json.loads(runs["summary"][0])["run_id"] == run_id
    assert stages.values.tolist() == [[name, "ran"] for name in RUN_STAGES]
    report = json.loads((settings.reports_dir / run_id / "data_quality.json").read_text())
    assert report["passed"] is True and len(report["checks"]) == len(dq) > 100
    assert set(dq["source"]) == {"ingest", "dbt"}
    assert not ((dq["severity"] == "error") & dq["status"].isin(["fail", "error"])).any()


def test_status_reads_the_run_log_from_bigquery(kaggle_run):
    settings, summary, _, env = kaggle_run
    proc = cli("--home", str(settings.home), "--target", "bigquery", "--json", "status",
               "--limit", "5", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    status = json.loads(proc.stdout)
    assert [b["rows_loaded"] for b in status["batches"]] == [3900]
    runs = {r["run_id"]: r["status"] for r in status["runs"]}
    assert runs[summary["run_id"]] == "succeeded" and len(runs) <= 5
    assert [s["stage"] for s in status["stages"] if s["run_id"] == summary["run_id"]] == \
        RUN_STAGES


def test_lake_on_gcs_and_fact_table_layout(kaggle_run, kaggle_csv):
    settings, summary, _, _ = kaggle_run
    [batch] = summary["inputs"]
    lake = open_lake(settings)
    assert batch["lake_raw_uri"].startswith(f"{settings.lake}/raw/source=kaggle/ingest_date=")
    assert batch["lake_parquet_uri"].startswith(f"{settings.lake}/validated/source=kaggle/")
    assert lake.fs.cat(batch["lake_raw_uri"]) == kaggle_csv.read_bytes()
    assert lake.fs.exists(batch["lake_parquet_uri"])
    assert not lake.fs.glob(f"{lake.root}/_staging/*")  # load copies are removed
    ddl = fact_table_ddl(settings)
    assert "cluster by customer_id" in ddl
    assert "partition by" not in ddl  # no purchase dates in this file


def test_secret_key_path_never_shows(kaggle_run):
    settings, summary, proc, _ = kaggle_run
    assert SECRET_MARKER not in proc.stdout + proc.stderr
    for path in settings.home.rglob("*"):
        if path.is_file():
            assert SECRET_MARKER.encode() not in path.read_bytes(), path
    with store(settings, read_only=True) as s:
        runs = s.query(f"select summary from {s.relation('meta', 'runs')}")  # noqa: S608
    assert not runs["summary"].str.contains(SECRET_MARKER).any()


def test_half_loaded_batch_is_cleaned_up_and_reloaded(cloud_settings, cdnow_sample, tmp_path):
    """A load that died after its rows reached BigQuery but before the batch was recorded is
    redone without duplicating rows; rejected rows go to raw.rejects in BigQuery."""
    from purchase_patterns.pipeline import ingest_stage, new_summary

    lines = cdnow_sample.read_text().splitlines()[:300]
    lines.append(" 09999 0999 19970230  1   12.00")  # no such date: rejected
    data = tmp_path / "cdnow_part.txt"
    data.write_text("\n".join(lines) + "\n")
    settings = cloud_settings("crash")
    first = new_summary(settings, "test")
    [res] = ingest_stage(settings, first, [data])
    assert (res.rows_in, res.rows_rejected) == (301, 1) and not res.error
    with store(settings) as s:
        # the crash: the batch row never made it
        s.execute(f"delete from {s.relation('raw', 'batches')} where batch_id = @b",  # noqa: S608
                  {"b": res.batch_id})
    second = new_summary(settings, "test")
    [again] = ingest_stage(settings, second, [data])
    assert not again.duplicate_skipped and not again.error
    assert (again.rows_loaded, again.rows_rejected) == (res.rows_loaded, 1)
    with store(settings, read_only=True) as s:
        got = s.query(
            f"select (select count(*) from {s.relation('raw', 'purchases')}) as p, "  # noqa: S608
            f"(select count(*) from {s.relation('raw', 'batches')}) as b, "
            f"(select max(line) from {s.relation('raw', 'rejects')}) as line, "
            f"(select max(reason) from {s.relation('raw', 'rejects')}) as reason").iloc[0]
    assert (got["p"], got["b"], got["line"]) == (res.rows_loaded, 1, 301)
    assert "date" in got["reason"]


@pytest.mark.cloud_full
def test_dated_cdnow_sample_marts_match_duckdb(cloud_settings, emulators, cdnow_sample,
                                               built_home):
    """The dated log: every mart, month, week, weekday and cohort ones included (the date
    macros avoid DATE_TRUNC, which the emulator gets wrong), and a fact table partitioned
    by month and clustered by customer."""
    settings, summary, _, _ = _run(cloud_settings, emulators, "cdnow", cdnow_sample)
    assert summary["inputs"][0]["rows_loaded"] == 6919
    duck = marts(load_settings(home=built_home("cdnow_sample")))
    assert {"agg_sales_by_month", "agg_sales_by_week", "agg_cohort_retention"} <= set(duck)
    assert_same_marts(duck, marts(settings))
    ddl = fact_table_ddl(settings)
    assert "partition by date_trunc(purchase_date, month)" in ddl
    assert "cluster by customer_id" in ddl


def test_airflow_task_bodies_land_then_load_on_the_cloud_target(emulators, tmp_path,
                                                                 cdnow_sample, monkeypatch):
    """The functions the Airflow DAGs call (``orchestration.py``) take the target from the
    settings: land into GCS, then load what is pending into BigQuery, once."""
    from purchase_patterns import orchestration

    dataset = "airflow_tasks"
    for key, value in emulators.env(dataset).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PURCHASE_PATTERNS_TARGET", "bigquery")
    data = tmp_path / "part.txt"
    data.write_text("\n".join(cdnow_sample.read_text().splitlines()[:200]) + "\n")
    home = str(tmp_path / "home")
    landed = orchestration.land(str(data), home=home)
    [entry] = landed["landed"]
    assert entry["raw_uri"].startswith(f"gs://test-lake/{dataset}/raw/source=cdnow/")
    assert landed["new"] == [entry["batch_id"]] and landed["unusable"] == []
    first = orchestration.load("run-1", home=home)
    assert [i["rows_loaded"] for i in first["inputs"]] == [200] and first["dated"] is True
    again = orchestration.load("run-2", home=home)
    assert [(i["batch_id"], i["rows_loaded"]) for i in again["inputs"]] == []
    done = orchestration.finish_and_publish(again, home=home)
    [publish] = [s for s in done["stages"] if s["name"] == "publish"]
    assert publish["status"] == "skipped" and "BigQuery" in publish["reason"]

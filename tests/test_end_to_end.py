"""The main job as a user runs it on the Kaggle file: one real ``purchase-patterns run``
process through every stage, then what it left behind, including that no secret given in
the settings reaches the output, the logs, the reports or the warehouse."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from test_cli import cli

#: Secrets given to the run through the environment, as a deployment would.
PASSWORD = "pw-e2e-6f1c9a2b"
KEY_FILE_MARKER = "key-e2e-3d8e7f10"


@pytest.fixture(scope="module")
def kaggle_run(tmp_path_factory, kaggle_csv):
    home = tmp_path_factory.mktemp("e2e") / "home"
    key_file = home.parent / f"{KEY_FILE_MARKER}.json"
    env = {"PURCHASE_PATTERNS_DASHBOARD__PASSWORD": PASSWORD,
           "PURCHASE_PATTERNS_GCP__CREDENTIALS_FILE": str(key_file)}
    proc = cli("--json", "run", "--input", str(kaggle_csv), home=home, env=env)
    status = cli("--json", "status", home=home, env=env)
    again = cli("--json", "run", "--input", str(kaggle_csv), home=home, env=env)
    return home, proc, status, again


def test_every_stage_runs_or_says_why_not(kaggle_run):
    _home, proc, _status, _again = kaggle_run
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    [batch] = summary["inputs"]
    assert batch["rows_in"] == 3900 == batch["rows_loaded"] + batch["rows_rejected"]
    stages = {s["name"]: s for s in summary["stages"]}
    for name in ("ingest", "transform", "predict", "analyze", "report", "publish"):
        assert stages[name]["status"] == "ran", stages.get(name)
    # the Kaggle file has no dates: the date models are skipped, each with its reason
    skipped = [s for s in summary["stages"] if s["status"] == "skipped"]
    assert skipped and all(s["reason"] for s in skipped)
    assert any("date" in s["reason"] for s in skipped)


def test_outputs_are_where_the_readme_says(kaggle_run):
    home, proc, _status, _again = kaggle_run
    run_id = json.loads(proc.stdout)["run_id"]
    reports = home / "reports" / run_id
    for name in ("data_quality.html", "report.html", "report.pdf", "model_cards.md"):
        assert (reports / name).stat().st_size > 0, name
    current = (home / "published" / "CURRENT").read_text(encoding="utf-8").strip()
    con = duckdb.connect(str(home / "published" / current), read_only=True)
    try:
        assert con.execute("select count(*) from marts.fct_purchases").fetchone()[0] == 3900
        assert con.execute("select count(*) from analytics.customer_segments").fetchone()[0] \
            == 3900
        assert con.execute("select status from meta.runs where run_id = ?",
                           [run_id]).fetchone()[0] == "succeeded"
    finally:
        con.close()


def test_a_second_run_of_the_same_file_adds_nothing(kaggle_run):
    home, _proc, _status, again = kaggle_run
    assert again.returncode == 0, again.stderr
    [batch] = json.loads(again.stdout)["inputs"]
    assert batch["duplicate_skipped"] and batch["rows_loaded"] == 3900
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from raw.purchases").fetchone()[0] == 3900
        assert con.execute("select count(*) from marts.fct_purchases").fetchone()[0] == 3900
    finally:
        con.close()


def _files(root: Path):
    return (p for p in root.rglob("*") if p.is_file())


def test_no_secret_reaches_output_logs_reports_or_warehouse(kaggle_run):
    home, proc, status, again = kaggle_run
    for secret in (PASSWORD, KEY_FILE_MARKER):
        for out in (proc, status, again):
            assert secret not in out.stdout + out.stderr
        for path in _files(home):  # reports, dbt logs and artifacts, lake manifests, ...
            assert secret.encode() not in path.read_bytes(), path
        con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
        try:  # stored text, whatever compression the database file uses
            hits = con.execute("select count(*) from meta.runs where summary like ?",
                               [f"%{secret}%"]).fetchone()[0]
            hits += con.execute("select count(*) from meta.run_log where detail like ?",
                                [f"%{secret}%"]).fetchone()[0]
        finally:
            con.close()
        assert hits == 0

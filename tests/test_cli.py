"""The CLI as a user runs it: real processes, exit codes, one-line errors, --json summaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from purchase_patterns.settings import load_settings


def cli(*args: str, home: Path | None = None, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "purchase_patterns"]
    if home is not None:
        cmd += ["--home", str(home)]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PURCHASE_PATTERNS_")}
    full_env.update(env or {})
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=600)


def test_ingest_json_summary_and_idempotency(home, kaggle_csv):
    first = cli("--json", "ingest", "--input", str(kaggle_csv), home=home)
    assert first.returncode == 0, first.stderr
    s = json.loads(first.stdout)
    assert s["run_id"] and s["command"] == "ingest"
    [inp] = s["inputs"]
    assert (inp["rows_in"], inp["rows_loaded"], inp["rows_rejected"]) == (3900, 3900, 0)
    assert inp["duplicate_skipped"] is False
    assert [st["name"] for st in s["stages"]] == ["ingest"]
    again = json.loads(cli("--json", "ingest", "-i", str(kaggle_csv), home=home).stdout)
    assert again["inputs"][0]["duplicate_skipped"] is True
    assert again["run_id"] != s["run_id"]

    human = cli("ingest", "-i", str(kaggle_csv), home=home)
    assert human.returncode == 0 and "already loaded" in human.stdout

    st = cli("--json", "status", home=home)
    status = json.loads(st.stdout)
    assert len(status["batches"]) == 1 and len(status["runs"]) == 3
    assert {r["status"] for r in status["runs"]} == {"succeeded"}


def test_unusable_input_exits_2_with_one_line(home, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    res = cli("ingest", "--input", str(bad), home=home)
    assert res.returncode == 2
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert errors and str(bad) in errors[0] and "no recognisable header" in errors[0]
    assert "Traceback" not in res.stderr + res.stdout

    missing = cli("ingest", "--input", str(tmp_path / "absent.csv"), home=home)
    assert missing.returncode == 2 and "does not exist" in missing.stderr

    debug = cli("--debug", "ingest", "--input", str(bad), home=home)
    assert debug.returncode == 2  # per-file problems are reported, not raised


def test_bad_usage_exits_2(home, tmp_path):
    assert cli("ingest", home=home).returncode == 2
    assert cli("ingest", "-i", "x", "--format", "nope", home=home).returncode == 2
    assert cli("frobnicate", home=home).returncode == 2
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("home: [unclosed\n")
    res = cli("--config", str(cfg), "status", home=home)
    assert res.returncode == 2 and "not valid YAML" in res.stderr


def test_home_from_environment_and_settings_file(tmp_path, kaggle_csv):
    env_home = tmp_path / "from_env"
    res = cli("ingest", "-i", str(kaggle_csv), env={"PURCHASE_PATTERNS_HOME": str(env_home)})
    assert res.returncode == 0, res.stderr
    assert (env_home / "warehouse.duckdb").exists() and (env_home / "lake" / "raw").is_dir()

    cfg = tmp_path / "purchase-patterns.yaml"
    yaml_home = tmp_path / "from_yaml"
    cfg.write_text(f"home: {yaml_home}\nduckdb_memory_limit: 1GB\n")
    res = cli("ingest", "-i", str(kaggle_csv), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (yaml_home / "warehouse.duckdb").exists()


def test_settings_precedence(tmp_path, monkeypatch):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("home: yaml_home\ngcp:\n  project: from-yaml\nmodels:\n  horizon_months: 6\n")
    monkeypatch.setenv("PURCHASE_PATTERNS_GCP__PROJECT", "from-env")
    s = load_settings(config=cfg)
    assert s.home == Path("yaml_home") and s.gcp.project == "from-env"
    assert s.models.horizon_months == 6
    assert load_settings(config=cfg, home=tmp_path).home == tmp_path
    monkeypatch.setenv("PURCHASE_PATTERNS_GCP__CREDENTIALS_FILE", "/secret/key.json")
    s = load_settings(config=cfg)
    assert "/secret/key.json" not in repr(s) and "/secret/key.json" not in str(s.model_dump())


@pytest.mark.parametrize("name", ["../../etc/passwd", "..\\..\\x.csv"])
def test_lake_paths_cannot_escape(tmp_path, name):
    from purchase_patterns.lake import Lake

    lake = Lake(str(tmp_path / "lake"))
    with pytest.raises(ValueError):
        lake._full(f"raw/{name}") if "/" in name else lake._full("../" + name)


def test_killed_run_is_shown_as_interrupted(home, kaggle_csv, cdnow_sample):
    """A run killed with SIGKILL stays 'running' in the log until the next run notices that its
    process is gone and marks it 'interrupted'; its batch is either absent or complete."""
    import signal
    import time

    from helpers import query

    proc = subprocess.Popen(
        [sys.executable, "-m", "purchase_patterns", "--home", str(home), "ingest",
         "-i", str(kaggle_csv)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = home / "warehouse.duckdb"
    deadline = time.time() + 60
    while time.time() < deadline and not db.exists():
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    res = cli("--json", "ingest", "-i", str(cdnow_sample), home=home)
    assert res.returncode == 0, res.stderr
    runs = dict(query(db, "select command || ':' || run_id, status from meta.runs"))
    statuses = sorted(runs.values())
    assert "succeeded" in statuses
    assert "running" not in statuses  # the killed run (if it got that far) is 'interrupted'
    for bid, rows_in, loaded, rejected in query(
            db, "select batch_id, rows_in, rows_loaded, rows_rejected from raw.batches"):
        n = query(db, "select count(*) from raw.purchases where batch_id = ?", [bid])[0][0]
        assert n == loaded and rows_in == loaded + rejected


def test_mostly_broken_input_fails_the_reject_rate_check_with_exit_1(home, kaggle_csv, tmp_path):
    """A file whose rows are mostly bad is quarantined row by row, and then the run stops on
    the ingest contract's error-severity reject-rate check: exit 1, nothing published."""
    header, *rows = kaggle_csv.read_text(encoding="utf-8").splitlines()
    age = header.split(",").index("Age")
    broken = []
    for i, line in enumerate(rows[:1000]):
        fields = line.split(",")
        if i % 5:  # 4 rows in 5 get an impossible age
            fields[age] = "250"
        broken.append(",".join(fields))
    bad = tmp_path / "mostly_bad.csv"
    bad.write_text("\n".join([header, *broken]) + "\n", encoding="utf-8")

    res = cli("--json", "run", "--input", str(bad), home=home)
    assert res.returncode == 1, res.stderr
    s = json.loads(res.stdout)
    [inp] = s["inputs"]
    assert (inp["rows_in"], inp["rows_loaded"], inp["rows_rejected"]) == (1000, 200, 800)
    assert any("reject rate" in e and "800 of 1000" in e for e in s["errors"]), s["errors"]
    stages = {st["name"]: st["status"] for st in s["stages"]}
    assert stages["transform"] == "failed" and stages["publish"] == "skipped"
    assert not (home / "published" / "CURRENT").exists()
    report = json.loads((home / "reports" / s["run_id"] / "data_quality.json").read_text())
    assert report["passed"] is False
    human = cli("run", "--input", str(bad), home=home)
    assert human.returncode == 1
    assert "data-quality check failed" in human.stderr and "reject rate" in human.stderr

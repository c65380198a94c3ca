"""Cloud settings without a cloud: what --target bigquery needs, how credentials are chosen
and kept secret, the dbt profile environment, and BigQuery parameter types."""

from __future__ import annotations

import datetime as dt
import decimal
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from purchase_patterns.cli import app
from purchase_patterns.errors import UsageError
from purchase_patterns.settings import load_settings

MARKER = "SECRET-MARKER-91c2"
GCP = {"project": "p", "bucket": "b"}


def test_bigquery_target_needs_project_and_bucket(tmp_path):
    from purchase_patterns.gcp import require

    s = load_settings(home=tmp_path, target="bigquery")
    with pytest.raises(UsageError, match="gcp.project and gcp.bucket"):
        require(s)
    s = load_settings(home=tmp_path, target="bigquery", gcp=GCP)
    assert require(s) is s.gcp
    assert s.lake == "gs://b" and s.warehouse_uri == "bigquery://p/purchase_patterns_*"
    local = load_settings(home=tmp_path, target="bigquery", gcp=GCP,
                          lake_url=str(tmp_path / "lake"))
    with pytest.raises(UsageError, match="gs://"):
        require(local)


def test_cli_reports_missing_gcp_settings_in_one_line(tmp_path, kaggle_csv, monkeypatch):
    monkeypatch.delenv("PURCHASE_PATTERNS_GCP__PROJECT", raising=False)
    res = CliRunner().invoke(app, ["--home", str(tmp_path), "--target", "bigquery", "run",
                                   "-i", str(kaggle_csv)])
    assert res.exit_code == 2
    assert "needs gcp.project and gcp.bucket" in res.output
    assert "Traceback" not in res.output


def test_key_file_path_is_secret(tmp_path):
    from purchase_patterns.gcp import credentials

    key = tmp_path / f"{MARKER}.json"
    s = load_settings(home=tmp_path, target="bigquery",
                      gcp=GCP | {"credentials_file": str(key)})
    assert MARKER not in repr(s) and MARKER not in s.model_dump_json()
    with pytest.raises(UsageError) as exc:  # missing file
        credentials(s.gcp)
    assert MARKER not in str(exc.value) and "gcp.credentials_file" in str(exc.value)
    key.write_text(json.dumps({"type": "service_account"}))  # not a usable key
    with pytest.raises(UsageError) as exc:
        credentials(s.gcp)
    assert MARKER not in str(exc.value) and exc.value.__cause__ is None


def test_settings_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PURCHASE_PATTERNS_TARGET", "bigquery")
    monkeypatch.setenv("PURCHASE_PATTERNS_GCP__PROJECT", "envproject")
    monkeypatch.setenv("PURCHASE_PATTERNS_GCP__BUCKET", "envbucket")
    monkeypatch.setenv("PURCHASE_PATTERNS_GCP__MAXIMUM_BYTES_BILLED", "1000000000")
    s = load_settings(home=tmp_path)
    assert (s.target, s.gcp.project, s.lake, s.gcp.maximum_bytes_billed) == (
        "bigquery", "envproject", "gs://envbucket", 10**9)
    with pytest.raises(ValueError):
        load_settings(home=tmp_path, gcp={"dataset": "no-dashes"})


@pytest.mark.parametrize(("gcp", "method"), [
    ({}, "oauth"),
    ({"credentials_file": f"/keys/{MARKER}.json"}, "service-account"),
    ({"anonymous": True, "bigquery_endpoint": "http://127.0.0.1:1"}, "oauth-secrets"),
])
def test_dbt_profile_environment(tmp_path, gcp, method):
    from purchase_patterns.transform import _common_args, dbt_vars, profile_env

    s = load_settings(home=tmp_path, target="bigquery", gcp=GCP | gcp)
    env = profile_env(s)
    assert env["PURCHASE_PATTERNS_DBT_TARGET"] == "bigquery"
    assert env["PURCHASE_PATTERNS_DBT_BQ_METHOD"] == method
    assert (env["PURCHASE_PATTERNS_DBT_BQ_PROJECT"], env["PURCHASE_PATTERNS_DBT_BQ_DATASET"]) \
        == ("p", "purchase_patterns")
    # a secret is only ever in a DBT_ENV_SECRET_ variable, which dbt scrubs from its logs
    assert [k for k, v in env.items() if MARKER in v] in (
        [], ["DBT_ENV_SECRET_BIGQUERY_KEYFILE"])
    assert ("PURCHASE_PATTERNS_DBT_BQ_API_ENDPOINT" in env) == ("bigquery_endpoint" in gcp)
    assert "PURCHASE_PATTERNS_WAREHOUSE" not in env
    args = _common_args(s, tmp_path, dated=True)
    assert args[args.index("--target") + 1] == "bigquery"
    assert dbt_vars(s, True) == ({"dated": True, "bigquery_emulator": True} if gcp.get("anonymous")
                              else {"dated": True})


def test_duckdb_profile_unchanged(tmp_path):
    from purchase_patterns.transform import dbt_vars, profile_env

    s = load_settings(home=tmp_path)
    env = profile_env(s)
    assert env["PURCHASE_PATTERNS_DBT_TARGET"] == "duckdb"
    assert env["PURCHASE_PATTERNS_WAREHOUSE"] == str(s.warehouse_path.resolve())
    assert not [k for k in env if "_BQ_" in k or "SECRET" in k]
    assert dbt_vars(s, False) == {"dated": False}


def test_query_parameter_types():
    from purchase_patterns.bigquery import query_parameter

    cases = {
        "s": ("x", "STRING"), "i": (np.int64(3), "INT64"), "f": (0.5, "FLOAT64"),
        "b": (True, "BOOL"), "nb": (np.bool_(False), "BOOL"),
        "d": (dt.date(2024, 1, 1), "DATE"), "t": (dt.datetime(2024, 1, 1, 1), "TIMESTAMP"),
        "n": (decimal.Decimal("1.25"), "NUMERIC"),
        "big": (decimal.Decimal("1.0123456789012"), "BIGNUMERIC"),
    }
    for name, (value, kind) in cases.items():
        p = query_parameter(name, value)
        assert (p.name, p.type_) == (name, kind)
    arr = query_parameter("a", ["x", "y"])
    assert (arr.array_type, arr.values) == ("STRING", ["x", "y"])
    with pytest.raises(ValueError, match="None"):
        query_parameter("z", None)
    with pytest.raises(TypeError):
        query_parameter("o", object())

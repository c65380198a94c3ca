"""The BigQuery DataStore against the emulator: the same contract as the DuckDB store
(named parameters never enter the SQL, writes replace tables, write_many is all or nothing,
read-only refuses writes), typed parameters, results with DuckDB's dtypes, and the loader's
tables created with their partitioning and clustering."""

from __future__ import annotations

import datetime as dt
import decimal

import pandas as pd
import pytest

from purchase_patterns import warehouse
from purchase_patterns.datastore import store

pytestmark = pytest.mark.cloud


@pytest.fixture(scope="module")
def settings(cloud_settings):
    return cloud_settings("store")


@pytest.fixture(scope="module")
def bq(settings):
    with store(settings) as s:
        yield s


def test_query_parameters_and_write_replace(bq):
    evil = "'; drop table x; --"
    bq.write("analytics", "t", pd.DataFrame({"k": ["a", "b", evil], "v": [1, 2, 3]}))
    assert bq.has_table("analytics", "t") and not bq.has_table("analytics", "nope")
    assert bq.columns("analytics", "t") == ["k", "v"]
    rel = bq.relation("analytics", "t")
    assert rel.startswith("`test-project.") and ".t`" in rel and "_analytics." in rel
    assert bq.query(f"select v from {rel} where k = @k", {"k": evil})["v"].tolist() == [3]
    # an e-mail-like string literal is not a parameter; unused parameters are ignored
    assert bq.query("select 'a@b' as x", {"unused": 1})["x"].tolist() == ["a@b"]
    bq.write("analytics", "t", pd.DataFrame({"k": ["z"], "v": [9], "extra": [1.5]}))
    got = bq.query(f"select * from {rel}")
    assert got.to_dict("records") == [{"k": "z", "v": 9, "extra": 1.5}]


def test_parameter_types_and_result_dtypes(bq):
    got = bq.query(
        "select @s as s, @i as i, @f as f, @b as b, @d as d, @t as t, @n as n, "
        "array_length(@arr) as n_arr",
        {"s": "x", "i": 7, "f": 0.25, "b": True, "d": dt.date(2024, 2, 29),
         "t": dt.datetime(2024, 1, 2, 3, 4, 5), "n": decimal.Decimal("12.34"),
         "arr": ["a", "b", "c"]})
    row = got.iloc[0]
    assert (row["s"], row["i"], row["f"], row["b"], row["n_arr"]) == ("x", 7, 0.25, True, 3)
    assert row["d"] == pd.Timestamp("2024-02-29") and row["t"] == pd.Timestamp("2024-01-02 03:04:05")
    assert row["n"] == pytest.approx(12.34)
    # the dtypes the DuckDB store gives
    assert str(got["d"].dtype) == "datetime64[us]" and str(got["t"].dtype) == "datetime64[us]"
    assert got["n"].dtype == "float64" and got["i"].dtype == "int64" and got["b"].dtype == bool
    with pytest.raises(ValueError, match="@missing is None"):
        bq.query("select @missing as m", {"missing": None})


def test_write_many_is_all_or_nothing(bq):
    bq.write("analytics", "a", pd.DataFrame({"x": [1]}))
    bad = pd.DataFrame({"x": [1 + 2j]})  # complex numbers cannot be stored
    with pytest.raises(Exception):  # noqa: B017
        bq.write_many("analytics", {"a": pd.DataFrame({"x": [2]}), "b": bad})
    assert bq.query(f"select x from {bq.relation('analytics', 'a')}")["x"].tolist() == [1]
    assert not bq.has_table("analytics", "b")
    bq.write_many("analytics", {"a": pd.DataFrame({"x": [2]}),
                                "b": pd.DataFrame({"when": [dt.date(2020, 1, 1)]})})
    assert bq.query(f"select x from {bq.relation('analytics', 'a')}")["x"].tolist() == [2]
    assert bq.columns("analytics", "b") == ["when"]
    # no staging table is left behind
    assert not [t for t in bq.client.list_tables(bq.dataset("analytics"), timeout=30)
                if t.table_id.startswith("_staging")]


def test_identifiers_are_checked(bq):
    with pytest.raises(ValueError):
        bq.relation("marts", "x; drop table y")
    with pytest.raises(ValueError):
        bq.relation("marts`", "x")


def test_read_only_store_refuses_writes(settings, bq):
    bq.write("analytics", "ro", pd.DataFrame({"x": [1]}))
    with store(settings, read_only=True) as s:
        assert s.query(f"select x from {s.relation('analytics', 'ro')}")["x"].tolist() == [1]
        for write in (lambda: s.write("analytics", "ro", pd.DataFrame({"x": [2]})),
                      lambda: s.append("analytics", "ro", pd.DataFrame({"x": [2]})),
                      lambda: s.execute(f"delete from {s.relation('analytics', 'ro')} "
                                        "where x = @x", {"x": 1})):
            with pytest.raises(PermissionError):
                write()


def test_loader_tables_partitioning_and_run_log(bq):
    from google.cloud.bigquery.retry import DEFAULT_RETRY

    purchases = bq.client.get_table(bq.table_id("raw", "purchases"), timeout=30,
                                    retry=DEFAULT_RETRY.with_timeout(30))
    assert purchases.time_partitioning.field == "purchase_date"
    assert purchases.time_partitioning.type_ == "MONTH"
    assert purchases.clustering_fields == ["customer_id"]
    types = {f.name: f.field_type for f in purchases.schema}
    assert (types["amount"], types["purchase_date"], types["quantity"]) == ("NUMERIC", "DATE",
                                                                           "INT64")
    for layer, table in (("raw", "rejects"), ("raw", "batches"), ("meta", "runs"),
                         ("meta", "run_log"), ("quality", "dq_results")):
        assert bq.has_table(layer, table), (layer, table)
    # the run log: start (twice: recorded once), stage, finish
    warehouse.start_run(bq, "r1", "test")
    warehouse.start_run(bq, "r1", "test")
    warehouse.log_stage(bq, "r1", "ingest", "ran", dt.datetime(2024, 1, 1), rows=None, detail="d")
    warehouse.finish_run(bq, "r1", "succeeded", 0, {"run_id": "r1"})
    runs = bq.query(f"select * from {bq.relation('meta', 'runs')} where run_id = @r", {"r": "r1"})
    assert len(runs) == 1
    assert (runs["status"][0], runs["exit_code"][0], runs["summary"][0]) == (
        "succeeded", 0, '{"run_id": "r1"}')
    log = bq.query(f"select stage, rows, detail from {bq.relation('meta', 'run_log')}")
    assert (log["stage"].tolist(), log["detail"].tolist()) == (["ingest"], ["d"])
    assert log["rows"].isna().all()


def test_query_batches_gives_the_query_in_pages(bq):
    bq.write("analytics", "n", pd.DataFrame({"i": range(5000), "k": [f"c{i}" for i in
                                                                   range(5000)]}))
    rel = bq.relation("analytics", "n")
    sql = f"select i, k from {rel} where i >= @lo order by i"  # noqa: S608
    parts = list(bq.query_batches(sql, {"lo": 10}, rows=2048))
    assert len(parts) == 3 and sum(len(p) for p in parts) == 4990
    joined = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(joined, bq.query(sql, {"lo": 10}))
    empty = list(bq.query_batches(sql, {"lo": 10**6}))
    assert len(empty) == 1 and empty[0].empty

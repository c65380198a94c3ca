"""The DataStore: named parameters never enter SQL text, writes replace tables atomically."""

from __future__ import annotations

import pandas as pd
import pytest

from purchase_patterns.datastore import store


def test_query_parameters_and_write_replace(settings):
    with store(settings) as s:
        s.write("analytics", "t", pd.DataFrame({"k": ["a", "b", "'; drop table x; --"],
                                                "v": [1, 2, 3]}))
        assert s.has_table("analytics", "t")
        assert s.columns("analytics", "t") == ["k", "v"]
        rel = s.relation("analytics", "t")
        got = s.query(f"select v from {rel} where k = @k", {"k": "'; drop table x; --"})  # noqa: S608
        assert got["v"].tolist() == [3]
        # an email-like value in a string literal is not taken for a parameter
        assert s.query("select 'a@b' as x")["x"].tolist() == ["a@b"]
        s.write("analytics", "t", pd.DataFrame({"k": ["z"], "v": [9]}))
        assert s.query(f"select * from {rel}")["k"].tolist() == ["z"]  # noqa: S608


def test_write_many_is_all_or_nothing(settings):
    with store(settings) as s:
        s.write("analytics", "a", pd.DataFrame({"x": [1]}))
        bad = pd.DataFrame({"x": [1 + 2j]})  # complex numbers: DuckDB cannot store them
        with pytest.raises(Exception):  # noqa: B017
            s.write_many("analytics", {"a": pd.DataFrame({"x": [2]}), "b": bad})
        assert s.query(f"select x from {s.relation('analytics', 'a')}")["x"].tolist() == [1]  # noqa: S608
        assert not s.has_table("analytics", "b")


def test_identifiers_are_checked(settings):
    with store(settings) as s, pytest.raises(ValueError):
        s.relation("marts", "x; drop table y")


def test_read_only_store_refuses_writes(settings):
    with store(settings) as s:
        s.write("analytics", "t", pd.DataFrame({"x": [1]}))
    with store(settings, read_only=True) as s:
        assert s.query(f"select x from {s.relation('analytics', 't')}")["x"].tolist() == [1]  # noqa: S608
        with pytest.raises(PermissionError):
            s.write("analytics", "t", pd.DataFrame({"x": [2]}))


def test_query_batches_gives_the_query_in_parts(settings):
    with store(settings) as s:
        s.write("analytics", "n", pd.DataFrame({"i": range(5000), "k": [f"c{i}" for i in
                                                                      range(5000)]}))
        rel = s.relation("analytics", "n")
        sql = f"select i, k from {rel} where i >= @lo order by i"  # noqa: S608
        parts = list(s.query_batches(sql, {"lo": 10}, rows=2048))
        assert len(parts) == 3 and all(len(p) <= 2048 for p in parts)
        joined = pd.concat(parts, ignore_index=True)
        pd.testing.assert_frame_equal(joined, s.query(sql, {"lo": 10}))
        empty = list(s.query_batches(sql, {"lo": 10**6}))
        assert len(empty) == 1 and empty[0].empty and list(empty[0].columns) == ["i", "k"]


def test_release_freed_memory_asks_the_c_library():
    import sys

    from purchase_patterns.memory import release_freed_memory

    assert release_freed_memory() is sys.platform.startswith("linux")

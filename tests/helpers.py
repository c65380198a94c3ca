"""Small helpers shared by tests (not fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from purchase_patterns.datastore import store

#: Every downstream stage but publish: what the insights, report and dashboard tests read
#: (one ``built_home`` per dataset with these, shared by those tests).
FULL_STAGES = ("transform", "predict", "analyze", "report")
#: mart columns that differ from run to run by nature (the load time of a batch)
RUN_SPECIFIC = {"attributes_loaded_at"}


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def scalar(db: Path, sql: str, params: list[Any] | None = None) -> Any:
    return query(db, sql, params)[0][0]


def read_cdnow(path: Path):
    """The CDNOW log read independently of the package: customer, date, cds, amount."""
    raw = pd.read_csv(path, sep=r"\s+", header=None, dtype=str,
                      names=["customer", "date", "cds", "amount"])
    raw = raw[raw["date"].str.fullmatch(r"\d{8}")].copy()  # drop a header line if present
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d").dt.date
    raw["amount"] = raw["amount"].astype(float)
    raw["cds"] = raw["cds"].astype(int)
    return raw


def marts(settings) -> dict[str, pd.DataFrame]:
    """Every mart table of a warehouse (DuckDB or BigQuery, through ``DataStore``), rows in a
    stable order, without the columns that differ from run to run."""
    out = {}
    with store(settings, read_only=True) as s:
        if settings.target == "bigquery":
            names = s.query(f"select table_name from `{s.project}.{s.dataset('marts')}`"  # noqa: S608
                            ".INFORMATION_SCHEMA.TABLES")["table_name"]
        else:
            names = s.query("select table_name from information_schema.tables "
                            "where table_schema = 'marts'")["table_name"]
        for name in sorted(names):
            frame = s.query(f"select * from {s.relation('marts', name)}")  # noqa: S608
            frame = frame.drop(columns=[c for c in frame.columns if c in RUN_SPECIFIC])
            out[name] = frame.sort_values(list(frame.columns), ignore_index=True,
                                          na_position="first")
    return out


def assert_same_marts(duck: dict[str, pd.DataFrame], bq: dict[str, pd.DataFrame]) -> None:
    """The same tables, columns and rows; floats equal to 1e-9 (sums of doubles depend on the
    order the engine adds them in)."""
    assert sorted(bq) == sorted(duck)
    for name, expected in duck.items():
        got = bq[name]
        assert list(got.columns) == list(expected.columns), name
        assert len(got) == len(expected), name
        for col in expected.columns:
            a, b = expected[col], got[col]
            if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
                assert np.allclose(a.astype(float), b.astype(float), rtol=1e-9, atol=1e-9,
                                   equal_nan=True), f"{name}.{col}"
            else:
                assert a.astype(object).where(a.notna(), None).tolist() == \
                    b.astype(object).where(b.notna(), None).tolist(), f"{name}.{col}"

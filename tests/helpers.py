"""Small helpers shared by tests (not fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

#: Every downstream stage but publish: what the insights, report and dashboard tests read
#: (one ``built_home`` per dataset with these, shared by those tests).
FULL_STAGES = ("transform", "predict", "analyze", "report")


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
    import pandas as pd

    raw = pd.read_csv(path, sep=r"\s+", header=None, dtype=str,
                      names=["customer", "date", "cds", "amount"])
    raw = raw[raw["date"].str.fullmatch(r"\d{8}")].copy()  # drop a header line if present
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d").dt.date
    raw["amount"] = raw["amount"].astype(float)
    raw["cds"] = raw["cds"].astype(int)
    return raw

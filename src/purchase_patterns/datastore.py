"""Reading marts and writing result tables, the same way on every warehouse target.

The analytics, prediction, report and dashboard code never opens a DuckDB connection or a
BigQuery client itself: it asks :func:`open_store` for a :class:`DataStore` and speaks to it
in three verbs.

- ``store.relation("marts", "dim_customers")`` gives the quoted name of a table for the
  target (``"marts"."dim_customers"`` on DuckDB; on BigQuery
  ``project.<dataset>_marts.dim_customers``, as dbt's ``generate_schema_name`` names it).
  Identifiers come only from the package, never from user input.
- ``store.query(sql, {"state": "Texas"})`` runs a query with **named parameters** written
  ``@name`` (BigQuery's syntax; rewritten to ``$name`` for DuckDB) and returns a pandas
  DataFrame. Values never enter the SQL text. ``store.query_batches(sql, params)`` gives the
  same result as a sequence of smaller DataFrames, for results too large to hold twice (the
  warehouse's copy and pandas') at once.
- ``store.write("analytics", "customer_segments", frame)`` replaces a table with a DataFrame
  (atomically: readers see the old table or the new one). ``write_many`` replaces several in
  one transaction where the target has transactions (on BigQuery: all frames are loaded into
  staging tables first, so a frame that cannot be stored changes nothing).
- ``store.append(layer, table, frame)`` adds rows to an existing table (by column name), and
  ``store.execute(sql, params)`` runs a statement that returns nothing (``update``,
  ``delete``), both for the run log (``warehouse.log_stage`` and co.) and the loader.

Layers (schemas; BigQuery datasets ``<dataset>_<layer>``): ``raw`` and ``meta`` (the loader),
``staging``, ``intermediate``, ``marts``, ``quality``, ``reference`` (dbt) and ``analytics``
(the analyze and predict stages).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pandas as pd

from .settings import Settings

LAYERS = ("raw", "meta", "staging", "intermediate", "marts", "quality", "reference",
          "analytics")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Rows per DataFrame from :meth:`DataStore.query_batches` unless asked otherwise.
BATCH_ROWS = 1_000_000
_PARAM = re.compile(r"(?<![@\w])@([A-Za-z_][A-Za-z0-9_]*)")


def _check_ident(*names: str) -> None:
    for name in names:
        if not _IDENT.match(name):
            raise ValueError(f"not a plain identifier: {name!r}")


class DataStore(Protocol):
    """What stages and the dashboard need from a warehouse."""

    target: str

    def relation(self, layer: str, table: str) -> str: ...

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame: ...

    def query_batches(self, sql: str, params: Mapping[str, Any] | None = None,
                      rows: int = ...) -> Iterator[pd.DataFrame]: ...

    def has_table(self, layer: str, table: str) -> bool: ...

    def columns(self, layer: str, table: str) -> list[str]: ...

    def write(self, layer: str, table: str, frame: pd.DataFrame) -> None: ...

    def write_many(self, layer: str, tables: Mapping[str, pd.DataFrame]) -> None: ...

    def append(self, layer: str, table: str, frame: pd.DataFrame) -> None: ...

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None: ...

    def close(self) -> None: ...


class DuckDBStore:
    """A :class:`DataStore` over a DuckDB database file."""

    target = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection, *, read_only: bool) -> None:
        self.con = con
        self.read_only = read_only

    # -- names --------------------------------------------------------------------------------
    def relation(self, layer: str, table: str) -> str:
        _check_ident(layer, table)
        return f'"{layer}"."{table}"'

    # -- reading ------------------------------------------------------------------------------
    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        return self.con.execute(_PARAM.sub(lambda m: "$" + m.group(1), sql),
                                dict(params or {})).df()

    def query_batches(self, sql: str, params: Mapping[str, Any] | None = None,
                      rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
        """:meth:`query` in batches of about ``rows`` rows (at least one batch, possibly
        empty), with the same column types."""
        vectors = max(1, rows // 2048)  # DuckDB hands results over in vectors of 2048 rows
        cur = self.con.execute(_PARAM.sub(lambda m: "$" + m.group(1), sql), dict(params or {}))
        chunk = cur.fetch_df_chunk(vectors)
        yield chunk  # always one frame, so an empty result still has its columns
        while len(chunk):
            chunk = cur.fetch_df_chunk(vectors)
            if len(chunk):
                yield chunk

    def has_table(self, layer: str, table: str) -> bool:
        return bool(self.con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?", [layer, table]).fetchone()[0])

    def columns(self, layer: str, table: str) -> list[str]:
        return [r[0] for r in self.con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [layer, table]).fetchall()]

    # -- writing ------------------------------------------------------------------------------
    def write(self, layer: str, table: str, frame: pd.DataFrame) -> None:
        self.write_many(layer, {table: frame})

    def write_many(self, layer: str, tables: Mapping[str, pd.DataFrame]) -> None:
        self._writable()
        _check_ident(layer, *tables)
        self.con.execute(f'create schema if not exists "{layer}"')
        self.con.execute("begin transaction")
        try:
            for i, (name, frame) in enumerate(tables.items()):
                view = f"_frame_{i}"
                self.con.register(view, frame)
                try:
                    self.con.execute(
                        f"create or replace table {self.relation(layer, name)} as "  # noqa: S608
                        f"select * from {view}")
                finally:
                    self.con.unregister(view)
        except BaseException:
            self.con.execute("rollback")
            raise
        self.con.execute("commit")

    def append(self, layer: str, table: str, frame: pd.DataFrame) -> None:
        self._writable()
        _check_ident(layer, table)
        self.con.register("_append_frame", frame)
        try:
            self.con.execute(f"insert into {self.relation(layer, table)} by name "  # noqa: S608
                             "select * from _append_frame")
        finally:
            self.con.unregister("_append_frame")

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._writable()
        self.con.execute(_PARAM.sub(lambda m: "$" + m.group(1), sql), dict(params or {}))

    def _writable(self) -> None:
        if self.read_only:
            raise PermissionError("this store was opened read-only")

    def close(self) -> None:
        self.con.close()


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a query result as plain Python values (NULL → None, numpy scalars → Python),
    e.g. for JSON."""
    out = []
    for row in frame.to_dict("records"):
        out.append({k: None if _is_missing(v) else v.item() if hasattr(v, "item")
                    and not isinstance(v, (str, bytes)) else v for k, v in row.items()})
    return out


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and arrays are values
        return False


def as_store(target: DataStore | duckdb.DuckDBPyConnection) -> DataStore:
    """A :class:`DataStore` for a store or an open DuckDB warehouse connection (which the
    store then shares: closing the connection is the caller's business)."""
    if isinstance(target, duckdb.DuckDBPyConnection):
        return DuckDBStore(target, read_only=False)
    return target


def open_store(settings: Settings, *, read_only: bool = False,
               path: Path | None = None) -> DataStore:
    """The store for the configured target. ``path`` opens another DuckDB file (e.g. the
    published copy the dashboard reads)."""
    if settings.target == "bigquery":
        try:
            from .bigquery import open_bigquery_store
        except ImportError as exc:
            from .errors import UsageError

            raise UsageError(f"--target bigquery needs the cloud extra ({exc.name} is not "
                             "installed): pip install 'purchase-patterns[cloud]'") from None
        return open_bigquery_store(settings, read_only=read_only)
    from .warehouse import connect

    return DuckDBStore(connect(settings, read_only=read_only, path=path), read_only=read_only)


@contextmanager
def store(settings: Settings, *, read_only: bool = False,
          path: Path | None = None) -> Iterator[DataStore]:
    """``with store(settings) as s:`` opens and always closes a :class:`DataStore`."""
    s = open_store(settings, read_only=read_only, path=path)
    try:
        yield s
    finally:
        s.close()

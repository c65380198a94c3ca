"""The embedded warehouse (DuckDB): connection, tables owned by the loader, and the run log.

Tables written here (dbt owns everything else):

- ``raw.purchases``: canonical purchase lines (see ``schema.py``), one batch per source file;
- ``raw.rejects``: rows that broke the contract, with file, line, column, reason and raw text;
- ``raw.batches``: one row per loaded file (content hash, counts, lake URIs);
- ``meta.runs`` and ``meta.run_log``: every run and every stage with status, timings, rows;
- ``quality.dq_results``: every data-quality check of every run (written by ``transform``).

The same tables exist on BigQuery (``bigquery.py``). The run log functions below write
through a :class:`~purchase_patterns.datastore.DataStore`, so they work on both.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from .datastore import DataStore, as_store
from .errors import PurchasePatternsError
from .schema import CANONICAL_COLUMNS
from .settings import Settings


@dataclass(frozen=True)
class Field:
    name: str
    sql_type: str
    not_null: bool = False


#: The tables the loader, the run log and the quality results own, on every target: DuckDB
#: DDL below, BigQuery schemas in ``bigquery.py``. Types are DuckDB's names.
TABLES: dict[tuple[str, str], tuple[Field, ...]] = {
    ("raw", "purchases"): tuple(Field(c.name, c.sql_type) for c in CANONICAL_COLUMNS),
    ("raw", "rejects"): (
        Field("batch_id", "VARCHAR", True), Field("source_file", "VARCHAR", True),
        Field("line", "BIGINT"), Field("column_name", "VARCHAR"),
        Field("reason", "VARCHAR", True), Field("raw_text", "VARCHAR"),
    ),
    ("raw", "batches"): (
        Field("batch_id", "VARCHAR", True), Field("run_id", "VARCHAR", True),
        Field("source_file", "VARCHAR", True), Field("source_format", "VARCHAR", True),
        Field("variant", "VARCHAR"), Field("size_bytes", "BIGINT"),
        Field("rows_in", "BIGINT", True), Field("rows_loaded", "BIGINT", True),
        Field("rows_rejected", "BIGINT", True), Field("dated", "BOOLEAN", True),
        Field("lake_raw_uri", "VARCHAR"), Field("lake_parquet_uri", "VARCHAR"),
        Field("loaded_at", "TIMESTAMP", True), Field("seconds", "DOUBLE"),
    ),
    ("meta", "runs"): (
        Field("run_id", "VARCHAR", True), Field("command", "VARCHAR"),
        Field("started_at", "TIMESTAMP", True), Field("finished_at", "TIMESTAMP"),
        Field("status", "VARCHAR", True), Field("exit_code", "INTEGER"),
        Field("summary", "JSON"), Field("pid", "INTEGER"), Field("host", "VARCHAR"),
    ),
    ("meta", "run_log"): (
        Field("run_id", "VARCHAR", True), Field("stage", "VARCHAR", True),
        Field("status", "VARCHAR", True), Field("started_at", "TIMESTAMP", True),
        Field("finished_at", "TIMESTAMP"), Field("seconds", "DOUBLE"), Field("rows", "BIGINT"),
        Field("detail", "VARCHAR"),
    ),
    ("quality", "dq_results"): (
        Field("run_id", "VARCHAR", True), Field("checked_at", "TIMESTAMP", True),
        Field("check_name", "VARCHAR", True), Field("source", "VARCHAR", True),
        Field("severity", "VARCHAR", True), Field("status", "VARCHAR", True),
        Field("failing_rows", "BIGINT"), Field("sample", "JSON"), Field("message", "VARCHAR"),
    ),
}

#: Constraints DuckDB enforces (BigQuery has none; its loader checks the same by query).
_CONSTRAINTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("raw", "batches"): ("primary key (batch_id)", "check (rows_in = rows_loaded + rows_rejected)"),
    ("meta", "runs"): ("primary key (run_id)",),
}


def _ddl(layer: str, table: str) -> str:
    cols = [f"{f.name} {f.sql_type}{' not null' if f.not_null else ''}"
            for f in TABLES[layer, table]]
    return (f"create table if not exists {layer}.{table} ("
            + ", ".join(cols + list(_CONSTRAINTS.get((layer, table), ()))) + ")")


DDL = [f"create schema if not exists {layer}" for layer in ("raw", "meta", "quality")] + [
    _ddl(layer, table) for layer, table in TABLES
]


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class WarehouseBusyError(PurchasePatternsError):
    pass


def connect(settings: Settings, *, read_only: bool = False,
            path: Path | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file with the configured memory limit, threads and spill folder.

    Spill files: DuckDB deletes every ``duckdb_temp_*`` file of its spill folder when an
    instance that spilled closes, and names them without an owner, so instances must not
    share one. The (single) writer uses ``<home>/.tmp``; readers use
    ``<home>/.tmp/reader-<pid>-<file>``, one per process and database file: within a process
    DuckDB shares one instance per file, and refuses a second connection to it with another
    configuration, so the folder must be the same for every connection to that file."""
    path = path or settings.warehouse_path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only,
                              config=_config(settings, _spill_dir(settings, path, read_only)))
    except duckdb.IOException as exc:
        msg = str(exc)
        m = re.search(r"PID (\d+)", msg)
        who = f" (process {m.group(1)})" if m else ""
        if "lock" in msg.lower():
            raise WarehouseBusyError(
                f"{path}: warehouse is in use by another process{who}; wait for it to finish"
            ) from None
        raise
    con.execute("set enable_progress_bar = false")
    if not read_only:
        if path == settings.warehouse_path:
            sweep_spill(settings)
        for stmt in DDL:
            con.execute(stmt)
    return con


def sweep_spill(settings: Settings) -> None:
    """Remove what killed processes left in the spill folder. Called by the writer once it
    holds the warehouse's lock, so no other writer can be using ``duckdb_temp_*`` files or
    ``ingest-*`` scratch folders; reader folders go only when their process is gone."""
    for entry in settings.tmp_dir.iterdir():
        name = entry.name
        if name.startswith("reader-"):
            pid = name.split("-")[1]
            if pid.isdigit() and process_alive(int(pid)):
                continue
        elif not name.startswith(("duckdb_temp_", "ingest-")):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def scratch(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB database with the loader's tables, where files are validated and
    staged before they go to a remote warehouse (BigQuery). It spills to ``tmp_dir`` like
    the warehouse does."""
    con = duckdb.connect(":memory:", config=_config(settings))
    con.execute("set enable_progress_bar = false")
    for stmt in DDL:
        con.execute(stmt)
    return con


def _spill_dir(settings: Settings, path: Path, read_only: bool) -> Path:
    """The writer spills to ``tmp_dir``; each reader process to its own folder per file."""
    if not read_only:
        return settings.tmp_dir
    file_key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    return settings.tmp_dir / f"reader-{os.getpid()}-{file_key}"


def _config(settings: Settings, spill: Path | None = None) -> dict[str, Any]:
    """The configured memory limit, threads and spill folder."""
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    return {
        "memory_limit": settings.duckdb_memory_limit,
        "threads": settings.duckdb_threads,
        "temp_directory": str(spill or settings.tmp_dir),
        "preserve_insertion_order": True,
    }


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


# -- run log ----------------------------------------------------------------------------------
# On every target: each function takes a DataStore (or an open DuckDB warehouse connection),
# adds rows with ``append`` and changes them with parameterised ``update`` statements whose
# SQL is valid on DuckDB and on BigQuery.


def start_run(store: DataStore | duckdb.DuckDBPyConnection, run_id: str,
              command: str) -> None:
    """Record a run as running (once), and mark runs left 'running' by a process that no
    longer exists on this host (killed, crashed) as 'interrupted'."""
    store = as_store(store)
    host = socket.gethostname()
    runs = store.relation("meta", "runs")
    stale = store.query(
        f"select run_id, pid from {runs} "  # noqa: S608 - package-built relation names only
        "where status = 'running' and host = @host and run_id <> @run_id",
        {"host": host, "run_id": run_id})
    for other, pid in stale.itertuples(index=False):
        if pd.isna(pid) or not process_alive(int(pid)):
            store.execute(f"update {runs} set status = 'interrupted' "  # noqa: S608
                          "where run_id = @run_id", {"run_id": other})
    known = store.query(f"select count(*) as n from {runs} where run_id = @run_id",  # noqa: S608
                        {"run_id": run_id})
    if int(known["n"].iloc[0]) == 0:
        store.append("meta", "runs", pd.DataFrame([{
            "run_id": run_id, "command": command, "started_at": now(), "status": "running",
            "pid": os.getpid(), "host": host,
        }]))


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finish_run(store: DataStore | duckdb.DuckDBPyConnection, run_id: str, status: str,
               exit_code: int, summary: dict[str, Any]) -> None:
    store = as_store(store)
    store.execute(
        f"update {store.relation('meta', 'runs')} "  # noqa: S608
        "set finished_at = @finished_at, status = @status, exit_code = @exit_code, "
        "summary = @summary where run_id = @run_id",
        {"finished_at": now(), "status": status, "exit_code": int(exit_code),
         "summary": json.dumps(summary, default=str), "run_id": run_id})


def log_stage(store: DataStore | duckdb.DuckDBPyConnection, run_id: str, stage: str,
              status: str, started_at: datetime, *, rows: int | None = None,
              detail: str = "") -> None:
    store = as_store(store)
    finished = now()
    store.append("meta", "run_log", pd.DataFrame([{
        "run_id": run_id, "stage": stage, "status": status, "started_at": started_at,
        "finished_at": finished, "seconds": (finished - started_at).total_seconds(),
        "rows": rows, "detail": detail,
    }]))

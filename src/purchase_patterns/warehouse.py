"""The embedded warehouse (DuckDB): connection, tables owned by the loader, and the run log.

Tables written here (dbt owns everything else):

- ``raw.purchases``: canonical purchase lines (see ``schema.py``), one batch per source file;
- ``raw.rejects``: rows that broke the contract, with file, line, column, reason and raw text;
- ``raw.batches``: one row per loaded file (content hash, counts, lake URIs);
- ``meta.runs`` and ``meta.run_log``: every run and every stage with status, timings, rows.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from .errors import PurchasePatternsError
from .schema import CANONICAL_COLUMNS
from .settings import Settings

DDL = [
    "create schema if not exists raw",
    "create schema if not exists meta",
    "create schema if not exists quality",
    "create table if not exists raw.purchases ("
    + ", ".join(f"{c.name} {c.sql_type}" for c in CANONICAL_COLUMNS)
    + ")",
    """create table if not exists raw.rejects (
        batch_id varchar not null, source_file varchar not null, line bigint,
        column_name varchar, reason varchar not null, raw_text varchar)""",
    """create table if not exists raw.batches (
        batch_id varchar primary key, run_id varchar not null, source_file varchar not null,
        source_format varchar not null, variant varchar, size_bytes bigint,
        rows_in bigint not null, rows_loaded bigint not null, rows_rejected bigint not null,
        dated boolean not null, lake_raw_uri varchar, lake_parquet_uri varchar,
        loaded_at timestamp not null, seconds double,
        check (rows_in = rows_loaded + rows_rejected))""",
    """create table if not exists meta.runs (
        run_id varchar primary key, command varchar, started_at timestamp not null,
        finished_at timestamp, status varchar not null, exit_code integer, summary json,
        pid integer, host varchar)""",
    """create table if not exists meta.run_log (
        run_id varchar not null, stage varchar not null, status varchar not null,
        started_at timestamp not null, finished_at timestamp, seconds double,
        rows bigint, detail varchar)""",
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
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    spill = settings.tmp_dir
    if read_only:
        file_key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        spill = spill / f"reader-{os.getpid()}-{file_key}"
    config = {
        "memory_limit": settings.duckdb_memory_limit,
        "threads": settings.duckdb_threads,
        "temp_directory": str(spill),
        "preserve_insertion_order": True,
    }
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=config)
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


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, command: str) -> None:
    """Record a run as running, and mark runs left 'running' by a process that no longer
    exists on this host (killed, crashed) as 'interrupted'."""
    host = socket.gethostname()
    for other, pid in con.execute(
        "select run_id, pid from meta.runs where status = 'running' and host = ? and run_id <> ?",
        [host, run_id],
    ).fetchall():
        if pid is None or not process_alive(pid):
            con.execute("update meta.runs set status = 'interrupted' where run_id = ?", [other])
    con.execute(
        "insert into meta.runs (run_id, command, started_at, status, pid, host) "
        "values (?, ?, ?, 'running', ?, ?) on conflict do nothing",
        [run_id, command, now(), os.getpid(), host],
    )


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, status: str, exit_code: int,
               summary: dict[str, Any]) -> None:
    con.execute(
        "update meta.runs set finished_at = ?, status = ?, exit_code = ?, summary = ? "
        "where run_id = ?",
        [now(), status, exit_code, json.dumps(summary, default=str), run_id],
    )


def log_stage(con: duckdb.DuckDBPyConnection, run_id: str, stage: str, status: str,
              started_at: datetime, *, rows: int | None = None, detail: str = "") -> None:
    finished = now()
    con.execute(
        "insert into meta.run_log values (?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, stage, status, started_at, finished,
         (finished - started_at).total_seconds(), rows, detail],
    )

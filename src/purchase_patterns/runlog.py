"""The run log (``meta.runs``, ``meta.run_log``) on any warehouse target.

Every function takes a :class:`~purchase_patterns.datastore.DataStore`, so the CLI, the
pipeline and the Airflow tasks record runs the same way on DuckDB and on BigQuery: rows are
added with ``store.append`` and changed with parameterised ``update`` statements whose SQL is
valid on both.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime
from typing import Any

import pandas as pd

from .datastore import DataStore
from .warehouse import now


def start_run(store: DataStore, run_id: str, command: str) -> None:
    """Record a run as running (once), and mark runs left 'running' by a process that no
    longer exists on this host (killed, crashed) as 'interrupted'."""
    host = socket.gethostname()
    runs = store.relation("meta", "runs")
    stale = store.query(
        f"select run_id, pid from {runs} "  # noqa: S608 - package-built relation names only
        "where status = 'running' and host = @host and run_id <> @run_id",
        {"host": host, "run_id": run_id})
    for other, pid in stale.itertuples(index=False):
        if pd.isna(pid) or not _alive(int(pid)):
            store.execute(f"update {runs} set status = 'interrupted' "  # noqa: S608
                          "where run_id = @run_id", {"run_id": other})
    known = store.query(f"select count(*) as n from {runs} where run_id = @run_id",  # noqa: S608
                        {"run_id": run_id})
    if int(known["n"].iloc[0]) == 0:
        store.append("meta", "runs", pd.DataFrame([{
            "run_id": run_id, "command": command, "started_at": now(), "status": "running",
            "pid": os.getpid(), "host": host,
        }]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finish_run(store: DataStore, run_id: str, status: str, exit_code: int,
               summary: dict[str, Any]) -> None:
    store.execute(
        f"update {store.relation('meta', 'runs')} "  # noqa: S608
        "set finished_at = @finished_at, status = @status, exit_code = @exit_code, "
        "summary = @summary where run_id = @run_id",
        {"finished_at": now(), "status": status, "exit_code": int(exit_code),
         "summary": json.dumps(summary, default=str), "run_id": run_id})


def log_stage(store: DataStore, run_id: str, stage: str, status: str, started_at: datetime, *,
              rows: int | None = None, detail: str = "") -> None:
    finished = now()
    store.append("meta", "run_log", pd.DataFrame([{
        "run_id": run_id, "stage": stage, "status": status, "started_at": started_at,
        "finished_at": finished, "seconds": (finished - started_at).total_seconds(),
        "rows": rows, "detail": detail,
    }]))

"""Running the project's DAGs for real in tests: parsed from ``dags/`` as Airflow's DAG
processor parses them and executed with ``dag.test()`` (every task in this process, against
the SQLite metadata database that the ``airflow_db`` fixture of ``conftest.py`` sets up).
Airflow is imported lazily, so that importing this module costs nothing."""

from __future__ import annotations

import gc
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from purchase_patterns import orchestration as orch

DAGS = Path(__file__).resolve().parents[1] / "dags"


@dataclass
class Run:
    state: str
    tasks: dict[str, tuple[str, int]]  # task id -> (state, try number)

    def state_of(self, task_id: str) -> str:
        return self.tasks[task_id][0]


def parse_dags() -> dict[str, Any]:
    """Parse ``dags/`` as Airflow's DAG processor does (with the current environment)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors, bag.import_errors
    return bag.dags


def run_dag(dag: Any, at: datetime | None = None, *, retry_delay: timedelta | None = None,
            **kwargs: Any) -> Run:
    """``dag.test()``; ``at`` fixes the run's date and so its run id (``manual__<at>``);
    ``retry_delay`` replaces the DAG's (a minute) so that a retried task runs again at once."""
    if at:
        kwargs |= {"logical_date": at, "run_after": at}
    if retry_delay is not None:
        for task in dag.tasks:
            task.retry_delay = retry_delay
    # As Airflow's LocalExecutor does before it starts its workers: the objects this process
    # already holds are left out of garbage collection, which cosmos runs after each dbt call.
    gc.freeze()
    dr = dag.test(**kwargs)
    return Run(str(dr.state), {ti.task_id: (str(ti.state), ti.try_number)
                               for ti in dr.get_task_instances()})


def drop(inbox: Path, source: Path, name: str | None = None, *, settled: bool = True) -> Path:
    """Copy ``source`` into the watched inbox (``settled``: as if copied a minute ago)."""
    inbox.mkdir(parents=True, exist_ok=True)
    dest = inbox / (name or source.name)
    shutil.copyfile(source, dest)
    if settled:
        old = time.time() - orch.INBOX_SETTLE_SECONDS - 60
        os.utime(dest, (old, old))
    return dest


@contextmanager
def restored_environ() -> Iterator[None]:
    """Put the process environment back as it was. ``dag.test()`` runs every task in this
    process, and cosmos copies each dbt task's environment into ``os.environ`` (for
    OpenLineage), where a worker would run each task in a process of its own."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)

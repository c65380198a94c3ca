"""Checkpoints: named points of a run where a crash test can stop it.

The pipeline calls :func:`checkpoint` at the steps that matter for crash safety (each stage's
start and end, each ingest step, inside the load transaction, each step of publishing, the
end of each dbt task of the Airflow DAG). It does nothing unless a setting asks for it:

- ``checkpoint_file``: append one line per checkpoint reached,
  ``<unix time> <pid> <detail or -> <name>``, so a test can learn every point of a run
  (new stages included) and when it is reached;
- ``pause_at``: at the checkpoint of that name (shell-style wildcards allowed), append
  ``... paused <name>`` and sleep for ``pause_seconds`` so that a test can kill the process
  there with SIGKILL; the run then goes on;
- ``fail_at``: at the first arrival at a checkpoint matching one of these names (wildcards
  allowed), append ``... failed <name>`` and raise :class:`InjectedFault`; a checkpoint the
  file already shows as failed passes the next time. This is the transient fault of a task
  that stops after part of its work (a lost connection, a killed worker), for proving that
  a retry (Airflow's, or a re-run) leaves the result of one clean run. The fault is not a
  :class:`~purchase_patterns.errors.PurchasePatternsError`, so Airflow's retry policy treats
  it as it treats anything unexpected: it retries.
"""

from __future__ import annotations

import fnmatch
import os
import time
from pathlib import Path

from .settings import Settings


class InjectedFault(RuntimeError):
    """The failure ``fail_at`` asked for."""


def checkpoint(settings: Settings, name: str, detail: str = "-") -> None:
    """Announce ``name``; pause there when ``pause_at`` matches it; fail there when
    ``fail_at`` matches it and it has not failed there before."""
    if settings.checkpoint_file is None:
        return
    pause = settings.pause_at is not None and fnmatch.fnmatchcase(name, settings.pause_at)
    fail = (any(fnmatch.fnmatchcase(name, p) for p in settings.fail_at)
            and name not in _failed_before(settings.checkpoint_file))
    with settings.checkpoint_file.open("a", encoding="utf-8") as fh:
        fh.write(f"{time.time():.3f} {os.getpid()} {detail} {name}\n")
        if pause:
            fh.write(f"{time.time():.3f} {os.getpid()} {detail} paused {name}\n")
        if fail:
            fh.write(f"{time.time():.3f} {os.getpid()} {detail} failed {name}\n")
    if pause:
        time.sleep(settings.pause_seconds)
    if fail:
        raise InjectedFault(f"injected fault at checkpoint {name!r} (setting fail_at)")


def _failed_before(path: Path) -> set[str]:
    """Checkpoint names at which ``fail_at`` already failed, from the checkpoint file."""
    if not path.exists():
        return set()
    failed = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split(" ", 4)
        if len(parts) == 5 and parts[3] == "failed":
            failed.add(parts[4])
    return failed

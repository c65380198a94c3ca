"""Checkpoints: named points of a run where a crash test can stop it.

The pipeline calls :func:`checkpoint` at the steps that matter for crash safety (each stage's
start and end, each ingest step, inside the load transaction, each step of publishing). It
does nothing unless a setting asks for it:

- ``checkpoint_file``: append one line per checkpoint reached,
  ``<unix time> <pid> <detail or -> <name>``, so a test can learn every point of a run
  (new stages included) and when it is reached;
- ``pause_at``: at the checkpoint of that name (shell-style wildcards allowed), append
  ``... paused <name>`` and sleep for ``pause_seconds`` so that a test can kill the process
  there with SIGKILL; the run then goes on.
"""

from __future__ import annotations

import fnmatch
import os
import time

from .settings import Settings


def checkpoint(settings: Settings, name: str, detail: str = "-") -> None:
    """Announce ``name``; pause there when ``pause_at`` matches it."""
    if settings.checkpoint_file is None:
        return
    pause = settings.pause_at is not None and fnmatch.fnmatchcase(name, settings.pause_at)
    with settings.checkpoint_file.open("a", encoding="utf-8") as fh:
        fh.write(f"{time.time():.3f} {os.getpid()} {detail} {name}\n")
        if pause:
            fh.write(f"{time.time():.3f} {os.getpid()} {detail} paused {name}\n")
    if pause:
        time.sleep(settings.pause_seconds)

"""Publish a finished warehouse for readers (dashboard, BI tools) atomically.

A run writes to ``<home>/warehouse.duckdb``. When every stage has succeeded, ``publish``
copies it, while holding its write lock and after a checkpoint (so the copy is consistent and
no other writer can change it mid-copy), to a hidden temporary file in ``<home>/published/``,
lets the caller record the run's outcome in the copy, syncs it and renames it to
``warehouse-<run id>.duckdb``, then swaps the pointer file ``<home>/published/CURRENT`` with an
atomic rename. Readers open the file CURRENT names, read-only, so they never see a half-built
table and never hold a lock the pipeline needs; a run that fails (or is killed) before the
swap leaves the previous copy in place. The copy before the new one is kept too, for readers
that still have it open; older copies and what killed publishes left behind are removed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from . import warehouse
from .faults import checkpoint
from .settings import Settings

#: Published copies kept: the new one and the one it replaced (a reader may still have it
#: open). The dashboard sizes its cache of open files from this.
KEEP = 2


def published_dir(settings: Settings) -> Path:
    return settings.home / "published"


def copy_path(settings: Settings, run_id: str) -> Path:
    """Where the copy a run publishes lives."""
    return published_dir(settings) / f"warehouse-{run_id}.duckdb"


def current(settings: Settings) -> Path | None:
    """The published warehouse readers should open, or None before the first publish."""
    name = _pointer(published_dir(settings))
    if name is None:
        return None
    path = published_dir(settings) / name
    return path if path.exists() else None


def _pointer(folder: Path) -> str | None:
    try:
        return (folder / "CURRENT").read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def publish(settings: Settings, run_id: str,
            finalise: Callable[[Path], None] | None = None) -> Path:
    """Copy the working warehouse and point CURRENT at the copy. ``finalise(path)`` may
    change the copy (e.g. record the run's outcome) before readers can see it."""
    folder = published_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    final = copy_path(settings, run_id)
    tmp = folder / f".{final.name}.{uuid.uuid4().hex}.tmp"
    con = warehouse.connect(settings)  # holds the write lock while the bytes are copied
    try:
        con.execute("checkpoint")
        shutil.copyfile(settings.warehouse_path, tmp)
    finally:
        con.close()
    checkpoint(settings, "publish:copied", run_id)
    if finalise:
        finalise(tmp)
    _fsync(tmp)
    os.replace(tmp, final)
    _fsync(folder)
    checkpoint(settings, "publish:renamed", run_id)
    previous = _pointer(folder)
    pointer_tmp = folder / f".CURRENT.{uuid.uuid4().hex}.tmp"
    pointer_tmp.write_text(final.name + "\n", encoding="utf-8")
    _fsync(pointer_tmp)
    os.replace(pointer_tmp, folder / "CURRENT")
    _fsync(folder)
    checkpoint(settings, "publish:pointer-swapped", run_id)
    _prune(folder, keep={final.name, previous})
    return final


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries, after a rename) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(folder: Path, keep: set[str | None]) -> None:
    """Keep the new copy and the one it replaced (a reader may still have it open); remove
    older copies, copies a killed publish renamed but never pointed to, and temporary files."""
    for copy in folder.glob("warehouse-*.duckdb"):
        if copy.name not in keep:
            copy.unlink(missing_ok=True)
            copy.with_name(copy.name + ".wal").unlink(missing_ok=True)
    for stale in [*folder.glob(".*.tmp"), *folder.glob(".*.tmp.wal")]:
        stale.unlink(missing_ok=True)

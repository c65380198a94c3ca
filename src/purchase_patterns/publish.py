"""Publish a finished warehouse for readers (dashboard, BI tools) atomically.

A run writes to ``<home>/warehouse.duckdb``. When every stage has succeeded, ``publish``
copies it to ``<home>/published/warehouse-<run id>.duckdb`` and then swaps the pointer file
``<home>/published/CURRENT`` with an atomic rename. Readers open the file CURRENT names,
read-only, so they never see a half-built table and never hold a lock the pipeline needs;
a run that fails (or is killed) before publishing leaves the previous copy in place.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from .settings import Settings

KEEP = 2


def published_dir(settings: Settings) -> Path:
    return settings.home / "published"


def current(settings: Settings) -> Path | None:
    """The published warehouse readers should open, or None before the first publish."""
    pointer = published_dir(settings) / "CURRENT"
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    path = published_dir(settings) / name
    return path if path.exists() else None


def publish(settings: Settings, run_id: str) -> Path:
    """Copy the (closed) working warehouse and point CURRENT at the copy."""
    folder = published_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"warehouse-{run_id}.duckdb"
    tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
    shutil.copyfile(settings.warehouse_path, tmp)
    wal = settings.warehouse_path.with_name(settings.warehouse_path.name + ".wal")
    if wal.exists() and wal.stat().st_size:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"{settings.warehouse_path}: still open by a writer; not published")
    _fsync(tmp)
    os.replace(tmp, folder / name)
    pointer_tmp = folder / f".CURRENT.{uuid.uuid4().hex}.tmp"
    pointer_tmp.write_text(name + "\n", encoding="utf-8")
    _fsync(pointer_tmp)
    os.replace(pointer_tmp, folder / "CURRENT")
    _prune(folder, keep_name=name)
    return folder / name


def _fsync(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def _prune(folder: Path, keep_name: str) -> None:
    """Keep the newest copies (a reader may still have the previous one open)."""
    copies = sorted(folder.glob("warehouse-*.duckdb"), key=lambda p: p.stat().st_mtime,
                    reverse=True)
    for old in copies[KEEP:]:
        if old.name != keep_name:
            old.unlink(missing_ok=True)
    for stale in folder.glob(".*.tmp"):
        stale.unlink(missing_ok=True)

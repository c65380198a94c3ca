"""The lake: raw files landed unchanged and Parquet copies of their validated rows.

Layout under the lake root (a local folder by default, ``gs://bucket`` in cloud mode, always
through fsspec)::

    raw/source=<format>/ingest_date=<YYYY-MM-DD>/<sha256><original suffixes>
    validated/source=<format>/ingest_date=<YYYY-MM-DD>/<sha256>.parquet
    rejects/source=<format>/ingest_date=<YYYY-MM-DD>/<sha256>.parquet   quarantined rows
    _manifest/<sha256>.json        one entry per batch
    _tmp/<host>-<pid>-<random>     work in progress (local lake); renamed into place

Object names are built only from the content hash and the detected format, never from the
user's file name, so a name such as ``../../etc/passwd`` cannot reach outside the lake (and a
relative path with ``..`` is refused). Writes are atomic: a local file is written under
``_tmp/`` and renamed; a GCS object appears only when its upload completes. What a killed
process left in ``_tmp/`` is removed by :meth:`Lake.sweep`. :func:`open_lake` gives the lake
of the settings, with the credentials and endpoint of a ``gs://`` lake.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fsspec

from .errors import PurchasePatternsError
from .settings import Settings
from .warehouse import process_alive

TMP = "_tmp"


class LakePathError(PurchasePatternsError, ValueError):
    """A lake path that would lead outside the lake."""


class Lake:
    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        """``storage_options`` go to the fsspec file system (credentials, endpoint of a
        ``gs://`` lake: see :func:`open_lake`)."""
        self.url = url.rstrip("/")
        self.fs, root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        self.root = root.rstrip("/")
        self.local = "file" in _protocols(self.fs)

    # -- paths ----------------------------------------------------------------------------
    def _full(self, rel: str) -> str:
        rel = rel.lstrip("/")
        if ".." in Path(rel).parts or ".." in rel.split("\\"):
            raise LakePathError(f"lake path escapes the lake: {rel}")
        return f"{self.root}/{rel}"

    def _tmp(self) -> str:
        """A fresh work-in-progress path under ``_tmp/`` (local lake), named after its owner."""
        folder = f"{self.root}/{TMP}"
        os.makedirs(folder, exist_ok=True)
        return f"{folder}/{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}"

    @contextmanager
    def temp_dir(self) -> Iterator[Path]:
        """A scratch folder for files to :meth:`move_in`: under ``_tmp/`` for a local lake (so
        the move is a rename), the system's temporary folder otherwise."""
        if not self.local:
            with tempfile.TemporaryDirectory() as d:
                yield Path(d)
            return
        path = Path(self._tmp())
        path.mkdir()
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def sweep(self) -> int:
        """Remove work in progress that processes on this host left when they were killed;
        returns how many entries went."""
        if not self.local:
            return 0
        folder = Path(self.root) / TMP
        if not folder.is_dir():
            return 0
        host, removed = socket.gethostname(), 0
        for entry in folder.iterdir():
            owner, _, rest = entry.name.rpartition("-")[0].rpartition("-")
            if owner != host or not rest.isdigit() or process_alive(int(rest)):
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        return removed

    def uri(self, rel: str) -> str:
        full = self._full(rel)
        return full if self.local else f"{self.url.split('://', 1)[0]}://{full}"

    @staticmethod
    def raw_rel(source: str, ingest_date: str, sha: str, suffix: str) -> str:
        return f"raw/source={source}/ingest_date={ingest_date}/{sha}{suffix}"

    @staticmethod
    def validated_rel(source: str, ingest_date: str, sha: str) -> str:
        return f"validated/source={source}/ingest_date={ingest_date}/{sha}.parquet"

    @staticmethod
    def rejects_rel(source: str, ingest_date: str, sha: str) -> str:
        return f"rejects/source={source}/ingest_date={ingest_date}/{sha}.parquet"

    # -- operations -----------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self._full(rel)))

    def put(self, local_path: Path, rel: str) -> str:
        """Copy a local file into the lake atomically; return its URI."""
        dest = self._full(rel)
        parent = dest.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if self.local:
            tmp = self._tmp()
            self.fs.put_file(str(local_path), tmp)
            os.replace(tmp, dest)
        else:
            self.fs.put_file(str(local_path), dest)
        return self.uri(rel)

    @contextmanager
    def local_copy(self, rel: str) -> Iterator[Path]:
        """A local path to read a lake object from (the object itself for a local lake)."""
        if self.local:
            yield Path(self._full(rel))
            return
        with tempfile.TemporaryDirectory() as d:
            local = Path(d) / Path(rel).name
            self.fs.get_file(self._full(rel), str(local))
            yield local

    def move_in(self, local_path: Path, rel: str) -> str:
        """Like :meth:`put`, but the local file may be consumed (renamed when the lake is a
        local folder on the same file system, which avoids copying large files)."""
        if not self.local:
            return self.put(local_path, rel)
        dest = Path(self._full(rel))
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(local_path, dest)
        except OSError:
            return self.put(local_path, rel)
        return self.uri(rel)

    def copy(self, uri: str, rel: str) -> str:
        """Copy an object of this lake (by URI) to ``rel`` (server-side on GCS)."""
        dest = self._full(rel)
        self.fs.makedirs(dest.rsplit("/", 1)[0], exist_ok=True)
        self.fs.copy(uri, dest)
        return self.uri(rel)

    def remove(self, rel: str) -> None:
        """Delete a lake object if it exists (temporary staging files only)."""
        full = self._full(rel)
        if self.fs.exists(full):
            self.fs.rm(full)

    def write_json(self, rel: str, payload: dict[str, Any]) -> str:
        dest = self._full(rel)
        self.fs.makedirs(dest.rsplit("/", 1)[0], exist_ok=True)
        data = json.dumps(payload, indent=2, sort_keys=True, default=str).encode()
        if self.local:
            tmp = self._tmp()
            with self.fs.open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, dest)
        else:
            with self.fs.open(dest, "wb") as fh:
                fh.write(data)
        return self.uri(rel)

    def read_json(self, rel: str) -> dict[str, Any] | None:
        full = self._full(rel)
        if not self.fs.exists(full):
            return None
        with self.fs.open(full, "rb") as fh:
            return json.loads(fh.read())

    def manifest_entry(self, sha: str) -> dict[str, Any] | None:
        return self.read_json(f"_manifest/{sha}.json")

    def write_manifest_entry(self, sha: str, entry: dict[str, Any]) -> str:
        return self.write_json(f"_manifest/{sha}.json", entry)

    def manifest(self) -> list[dict[str, Any]]:
        """All batch entries, oldest first."""
        pattern = self._full("_manifest/*.json")
        entries = []
        for path in self.fs.glob(pattern):
            with self.fs.open(path, "rb") as fh:
                entries.append(json.loads(fh.read()))
        return sorted(entries, key=lambda e: str(e.get("landed_at", "")))


def open_lake(settings: Settings) -> Lake:
    """The lake of the settings: a local folder, or a ``gs://`` bucket reached with the
    credentials and endpoint of ``settings.gcp``."""
    url = settings.lake
    if url.startswith("gs://"):
        from .gcp import storage_options

        return Lake(url, storage_options(settings.gcp))
    return Lake(url)


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)

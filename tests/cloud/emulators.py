"""The GCS and BigQuery emulators the cloud tests run against, on 127.0.0.1.

They live in their own virtual environment (``.venv-emulators``, built by ``make test`` from
``constraints-emulators.txt``) because the BigQuery emulator needs duckdb 1.5 and the package
uses duckdb 2.0. This file is also run by the Makefile with that environment's Python
(``python tests/cloud/emulators.py prepare``) to install the DuckDB extensions the BigQuery
emulator loads at start from the wheels, since it would otherwise download them: so it
imports nothing outside the standard library at module level.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-emulators"
#: HOME of the BigQuery emulator: its DuckDB finds the pre-installed extensions there
EXT_HOME = VENV / "home"
EXTENSIONS = ("spatial", "avro")
PROJECT = "test-project"
BUCKET = "test-lake"
START_TIMEOUT = 60.0


def prepare() -> None:
    """Install the emulator's DuckDB extensions from their wheels into ``EXT_HOME``."""
    import importlib

    import duckdb

    os.environ["HOME"] = str(EXT_HOME)
    EXT_HOME.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    for name in EXTENSIONS:
        module = importlib.import_module(f"duckdb_extension_{name}")
        [path] = Path(module.__file__).parent.rglob(f"{name}.duckdb_extension")
        con.execute(f"INSTALL '{path}'")
    installed = {r[0] for r in con.execute(
        "select extension_name from duckdb_extensions() where installed").fetchall()}
    missing = set(EXTENSIONS) - installed
    if missing:
        raise SystemExit(f"could not install DuckDB extensions: {sorted(missing)}")


def available() -> bool:
    return (VENV / "bin" / "bqemulator").exists() and (
        VENV / "bin" / "gcp-storage-emulator").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Emulators:
    """Both emulators, started by :func:`start` and stopped (by PID) with :meth:`stop`."""

    root: Path
    storage_url: str = ""
    bigquery_url: str = ""
    processes: list[subprocess.Popen] = field(default_factory=list)

    def settings(self, home: Path, dataset: str, **gcp: object) -> dict[str, object]:
        """Keyword arguments of ``load_settings`` for a BigQuery target on the emulators;
        the lake is a folder of the bucket named like the dataset, so that tests do not see
        each other's batches."""
        return {"home": home, "target": "bigquery", "lake_url": f"gs://{BUCKET}/{dataset}",
                "gcp": {
            "project": PROJECT, "bucket": BUCKET, "dataset": dataset, "anonymous": True,
            "bigquery_endpoint": self.bigquery_url, "storage_endpoint": self.storage_url,
            "timeout_seconds": 60, **gcp}}

    def env(self, dataset: str) -> dict[str, str]:
        """The same settings as environment variables, for the CLI in a subprocess."""
        return {
            "PURCHASE_PATTERNS_LAKE_URL": f"gs://{BUCKET}/{dataset}",
            "PURCHASE_PATTERNS_GCP__PROJECT": PROJECT,
            "PURCHASE_PATTERNS_GCP__BUCKET": BUCKET,
            "PURCHASE_PATTERNS_GCP__DATASET": dataset,
            "PURCHASE_PATTERNS_GCP__ANONYMOUS": "true",
            "PURCHASE_PATTERNS_GCP__BIGQUERY_ENDPOINT": self.bigquery_url,
            "PURCHASE_PATTERNS_GCP__STORAGE_ENDPOINT": self.storage_url,
            "PURCHASE_PATTERNS_GCP__TIMEOUT_SECONDS": "60",
        }

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and workers
        for proc in self.processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        self.processes.clear()


def start(root: Path) -> Emulators:
    """Start the GCS emulator (objects on disk under ``root``) and the BigQuery emulator
    (reading ``gs://`` load URIs from the same disk store), wait until both answer."""
    emu = Emulators(root)
    data = root / "gcs"
    data.mkdir(parents=True, exist_ok=True)
    gcs_port, bq_port = free_port(), free_port()
    emu.storage_url = f"http://127.0.0.1:{gcs_port}"
    emu.bigquery_url = f"http://127.0.0.1:{bq_port}"
    bin_ = VENV / "bin"
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("PURCHASE_PATTERNS_", "STORAGE_EMULATOR", "BIGQUERY_EMU"))}
    try:
        emu.processes.append(_spawn(
            [str(bin_ / "gcp-storage-emulator"), "-d", str(data), "start", "--host",
             "127.0.0.1", "--port", str(gcs_port), "--default-bucket", BUCKET, "--quiet"],
            base_env, root / "gcs.log"))
        emu.processes.append(_spawn(
            [str(bin_ / "bqemulator"), "start", "--rest-host", "127.0.0.1", "--rest-port",
             str(bq_port), "--grpc-host", "127.0.0.1", "--grpc-port", "0", "--project",
             PROJECT, "--log-level", "warning"],
            base_env | {"HOME": str(EXT_HOME),
                        "BQEMU_GCS_LOCAL_ROOT": str(data / ".cloudstorage")},
            root / "bigquery.log"))
        _wait(f"{emu.storage_url}/storage/v1/b/{BUCKET}", emu, root / "gcs.log")
        _wait(f"{emu.bigquery_url}/healthz", emu, root / "bigquery.log")
    except BaseException:
        emu.stop()
        raise
    return emu


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                cwd=log.parent)


def _wait(url: str, emu: Emulators, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in emu.processes):
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"emulator at {url} did not start:\n{tail}")


if __name__ == "__main__":
    if sys.argv[1:] == ["prepare"]:
        prepare()
    else:
        raise SystemExit("usage: python tests/cloud/emulators.py prepare")

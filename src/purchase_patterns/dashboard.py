"""Serving the interactive dashboard (``purchase-patterns dashboard``).

The app itself lives in the top-level ``dashboard/`` folder (a Streamlit router, pages and
one data-access module). This module only starts it safely: on 127.0.0.1 unless told
otherwise, refusing any other address unless a password is set
(``PURCHASE_PATTERNS_DASHBOARD__PASSWORD``), on a port that is free, without telemetry, and
with the same ``--home``/``--config``/``--target`` as the command that started it. The URL
is announced once the server answers its health check.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .errors import UsageError
from .settings import Settings

#: The app folder of a source checkout (``dashboard/`` beside ``src/``).
DEFAULT_APP_DIR = Path(__file__).resolve().parents[2] / "dashboard"
APP_SCRIPT = "streamlit_app.py"
STARTUP_SECONDS = 60


def app_dir(settings: Settings) -> Path:
    folder = settings.dashboard.app_dir or DEFAULT_APP_DIR
    if not (folder / APP_SCRIPT).is_file():
        raise UsageError(f"{folder}: no {APP_SCRIPT} here; set dashboard.app_dir to the "
                         "dashboard folder of a purchase-patterns checkout")
    return folder


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def free_port(address: str = "127.0.0.1") -> int:
    """A port the OS reports free on ``address`` right now."""
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def _port_in_use(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return True
    return False


def command(settings: Settings, *, address: str, port: int) -> list[str]:
    """The ``streamlit run`` command line (settings travel after ``--`` to the app)."""
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(app_dir(settings) / APP_SCRIPT),
        "--server.address", address,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.enableStaticServing", "true",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
        # no forced full garbage collection after every rerun: in a process holding a
        # warehouse's caches it took about 100 ms of each filter change at 10M purchase
        # lines (bench/bench_dashboard.py: median 290 ms -> 190 ms); Python's own
        # generational collector still runs
        "--runner.postScriptGC", "false",
        # tracebacks stay in this console; a remote viewer sees a generic message
        "--client.showErrorDetails", "full" if is_loopback(address) else "none",
        "--",
        "--home", str(settings.home.resolve()),
        "--target", settings.target,
    ]
    if settings.config:
        cmd += ["--config", str(Path(settings.config).resolve())]
    return cmd


def serve(settings: Settings, *, port: int | None = None, address: str | None = None,
          announce: Callable[[str], None] = print) -> int:
    """Run the dashboard until it stops (Ctrl+C); returns its exit code."""
    if importlib.util.find_spec("streamlit") is None:
        raise UsageError("the dashboard needs the dashboard extra: "
                         "pip install 'purchase-patterns[dashboard]'")
    address = address or settings.dashboard.address
    if not is_loopback(address) and settings.dashboard.password is None:
        raise UsageError(f"refusing to serve the dashboard on {address} without a password: "
                         "set PURCHASE_PATTERNS_DASHBOARD__PASSWORD (or dashboard.password in "
                         "the settings file), or bind 127.0.0.1")
    port = settings.dashboard.port if port is None else port
    if port == 0:
        port = free_port(address)
    elif _port_in_use(address, port):
        raise UsageError(f"port {port} on {address} is in use: pass --port N, or --port 0 "
                         "for any free port")
    host = f"[{address}]" if ":" in address else address
    url = f"http://{host}:{port}"
    proc = subprocess.Popen(command(settings, address=address, port=port))
    # a TERM sent to this process (not to its group) must stop the server too
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if _wait_healthy(proc, url):
            announce(url)
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop(proc)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _stop(proc: subprocess.Popen) -> None:
    """Let the server finish stopping (Ctrl+C reached it too), else stop it."""
    for step in (None, proc.terminate, proc.kill):
        if step is not None:
            step()
        try:
            proc.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_healthy(proc: subprocess.Popen, url: str) -> bool:
    """Poll the server's health endpoint until it answers, it exits, or time runs out."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:  # noqa: S310 - our own local URL
                if resp.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False

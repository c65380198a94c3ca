"""``purchase-patterns dashboard``: loopback by default, no other address without a
password, a clear error for a busy port, and the exact server command it runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from purchase_patterns.dashboard import command, is_loopback
from purchase_patterns.settings import load_settings


def cli(*args: str, home: Path, env: dict[str, str] | None = None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PURCHASE_PATTERNS_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "purchase_patterns", "--home", str(home),
                           "dashboard", *args], capture_output=True, text=True, env=full_env,
                          timeout=120)


def test_other_address_needs_a_password(tmp_path):
    res = cli("--address", "0.0.0.0", home=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "without a password" in lines[0]
    assert "Traceback" not in res.stderr


def test_busy_port_is_one_clear_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        res = cli("--port", str(port), home=tmp_path)
    assert res.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in res.stderr
    assert "--port 0" in res.stderr


def test_server_command(tmp_path):
    settings = load_settings(home=tmp_path, target="duckdb")
    cmd = command(settings, address="127.0.0.1", port=8765)
    joined = " ".join(cmd)
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert cmd[4].endswith("dashboard/streamlit_app.py") and Path(cmd[4]).is_file()
    for option in ("--server.address 127.0.0.1", "--server.port 8765",
                   "--server.headless true", "--browser.gatherUsageStats false",
                   "--server.enableStaticServing true", "--client.showErrorDetails full"):
        assert option in joined
    assert cmd[cmd.index("--") + 1:] == ["--home", str(tmp_path.resolve()), "--target",
                                         "duckdb"]
    remote = " ".join(command(settings, address="10.1.2.3", port=8765))
    assert "--client.showErrorDetails none" in remote  # no tracebacks for remote viewers
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")


def test_stopping_the_command_stops_the_server(published_home):
    """TERM to the command alone (a service manager, a killed terminal) stops the server it
    started: the port stops answering."""
    import re
    import time
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "purchase_patterns", "--home",
                             str(published_home("kaggle")), "dashboard", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = None
    try:
        for line in proc.stdout:
            m = re.search(r"dashboard: (http://127\.0\.0\.1:\d+)", line)
            if m:
                url = m.group(1)
                break
        assert url
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as resp:
            assert resp.status == 200
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        time.sleep(0.5)
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            answered = True
        except OSError:
            answered = False
        assert not answered, "the server outlived the command"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()

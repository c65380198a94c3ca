"""A 2 GB input without writing 2 GB: a sparse file (real rows, then a 2 GiB hole of NUL
bytes, then more real rows) and a gzip bomb (1 GiB of NULs in a 1 MB file), both through the
real CLI. What matters: bounded memory, a clear one-line error naming the file and line, no
crash, and nothing copied into the lake. (A valid 2 GB file is a benchmark, not a test:
``python bench/big_file.py``; see the README.)"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

GIB = 1024**3


def run_measured(args: list[str]) -> tuple[int, str, float, float]:
    """Run the CLI; return exit code, stderr, peak memory (MB) and seconds of that process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURCHASE_PATTERNS_")}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "purchase_patterns", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, stderr, usage.ru_maxrss / 1024, time.perf_counter() - t0


def disk_usage(folder: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def test_sparse_2gb_file(tmp_path: Path, kaggle_csv: Path) -> None:
    header, *rows = kaggle_csv.read_text(encoding="utf-8").splitlines()
    head = ("\n".join([header, *rows[:100]]) + "\n").encode()
    tail = ("\n".join(rows[100:200]) + "\n").encode()
    path = tmp_path / "two_gigabytes.csv"
    with path.open("wb") as fh:
        fh.write(head)
        fh.seek(2 * GIB - len(tail))
        fh.write(tail)
    assert path.stat().st_size == 2 * GIB
    assert path.stat().st_blocks * 512 < 10 * 1024**2  # sparse: the hole takes no disk
    home = tmp_path / "home"
    code, stderr, peak_mb, _seconds = run_measured(["--home", str(home), "ingest",
                                                    "--input", str(path)])
    assert code == 2
    assert "Traceback" not in stderr
    errors = [ln for ln in stderr.splitlines() if ln.strip()]
    # the hole starts right after the 100th row (line 101): line 102 is 2 GB of NULs
    assert errors == [f"error: {path}:102: line is longer than 10,000,000 bytes: not "
                      "line-delimited text there (binary data, or line ends missing)"]
    assert peak_mb < 500, peak_mb
    assert not list((home / "lake").rglob("*.csv"))  # nothing landed
    assert disk_usage(home) < 50 * 1024**2


def test_gzip_bomb(tmp_path: Path) -> None:
    member = gzip.compress(bytes(1024**2), mtime=0)  # 1 MiB of NULs in about 1 KB
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(member * 1024)  # 1,024 concatenated members: 1 GiB when inflated
    assert path.stat().st_size < 2 * 1024**2
    home = tmp_path / "home"
    code, stderr, peak_mb, _seconds = run_measured(["--home", str(home), "ingest",
                                                    "--input", str(path)])
    assert code == 2
    assert [ln for ln in stderr.splitlines() if ln.strip()] == [
        f"error: {path}: not delimited text (binary content)"]
    assert peak_mb < 500, peak_mb


def test_max_rss_is_measured() -> None:
    """The measurement itself works (a child that allocates 200 MB shows it)."""
    code, _err, _peak, _s = run_measured(["--version"])
    assert code == 0
    proc = subprocess.Popen([sys.executable, "-c", "b = bytearray(200 * 1024**2); b[::4096] = "
                             "b'x' * len(b[::4096])"])
    _, _status, usage = os.wait4(proc.pid, 0)
    assert usage.ru_maxrss / 1024 > 200

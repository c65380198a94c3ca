"""Run one command in its own process and measure its wall time and peak resident memory.

Peak RSS comes from the kernel's accounting of the finished child (``os.wait4`` →
``ru_maxrss``, the high-water mark of the child or of any descendant it waited for), so
nothing polls and nothing is missed between samples.

A command that reports numbers of its own (a fit time, a browser latency) writes them as JSON
to the file it is given; :func:`measure` reads that file after each run into ``details``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Measurement:
    """Every run of one command: wall seconds, peak RSS (MB), and what it reported itself."""

    key: str
    name: str
    seconds: list[float] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)
    returncode: int = 0
    details: list[dict] = field(default_factory=list)
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.seconds)

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_rss_mb(self) -> float:
        return statistics.median(self.peak_rss_mb)

    def as_dict(self) -> dict:
        return {"key": self.key, "name": self.name, "seconds": self.seconds,
                "peak_rss_mb": self.peak_rss_mb, "returncode": self.returncode,
                "median_seconds": round(self.median_seconds, 3) if self.seconds else None,
                "median_peak_rss_mb": round(self.median_rss_mb, 1) if self.seconds else None,
                "details": self.details, "log": self.log}


def run_once(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
             log: Path | None = None, stdout: Path | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, return code) of one run of ``cmd``. Its output is
    appended to ``log`` (or discarded); ``stdout`` given, standard output goes there alone."""
    with ExitStack() as files:
        err = files.enter_context(open(log, "ab")) if log else subprocess.DEVNULL
        out = files.enter_context(open(stdout, "wb")) if stdout else err
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024.0, proc.returncode


def measure(key: str, name: str, cmd: list[str], *, repeats: int = 3,
            env: dict[str, str] | None = None, cwd: Path | None = None,
            log: Path | None = None, before: Callable[[], None] | None = None,
            reports: Path | None = None) -> Measurement:
    """Run ``cmd`` ``repeats`` times (stopping at the first failure). ``before()`` runs,
    unmeasured, before each run (e.g. to reset the state the command starts from);
    ``reports`` is the JSON file the command writes its own numbers to."""
    m = Measurement(key, name, log=str(log) if log else "")
    for _ in range(repeats):
        if before:
            before()
        if reports:
            reports.unlink(missing_ok=True)
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"\n$ {' '.join(cmd)}\n")
        wall, peak, m.returncode = run_once(cmd, env=env, cwd=cwd, log=log)
        m.seconds.append(round(wall, 3))
        m.peak_rss_mb.append(round(peak, 1))
        if reports and reports.exists():
            m.details.append(json.loads(reports.read_text(encoding="utf-8")))
        if m.returncode != 0:
            break
    return m

"""Run one command in its own process and measure its wall time and peak resident memory.

Peak RSS comes from the kernel's accounting of the finished child (``os.wait4`` →
``ru_maxrss``, the high-water mark of the child or of any descendant it waited for), so
nothing polls and nothing is missed between samples.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Measurement:
    name: str
    seconds: list[float]
    peak_rss_mb: list[float]
    returncode: int
    detail: str = ""

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_rss_mb(self) -> float:
        return statistics.median(self.peak_rss_mb)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["median_seconds"] = round(self.median_seconds, 3)
        d["median_peak_rss_mb"] = round(self.median_rss_mb, 1)
        return d


def run_once(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
             log: Path | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, return code) of one run of ``cmd``."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if log:
            out.close()
    return wall, usage.ru_maxrss / 1024.0, proc.returncode


def measure(name: str, cmd: list[str], *, repeats: int = 3, env: dict[str, str] | None = None,
            cwd: Path | None = None, log: Path | None = None, before=None) -> Measurement:
    """Median-of-``repeats`` measurement; ``before()`` runs (unmeasured) before each run,
    e.g. to reset the state the command starts from."""
    secs, rss, code = [], [], 0
    for _ in range(repeats):
        if before:
            before()
        wall, peak, code = run_once(cmd, env=env, cwd=cwd, log=log)
        secs.append(round(wall, 3))
        rss.append(round(peak, 1))
        if code != 0:
            break
    return Measurement(name, secs, rss, code)

"""Benchmark: ingest one large valid CSV (2 GB by default) and report time and peak memory.

The file is the real Kaggle rows repeated, each copy with fresh customer ids, written in
streamed blocks (never held in memory). The ingest runs as the real CLI in a child process;
its time and peak resident memory come from ``wait4`` (``bench/measure.py``). Not part of
``make test`` (it writes the file and lands a copy of it in the lake: about twice its size on
disk).

    .venv/bin/python bench/big_file.py [--size 2GB] [--memory-limit 1GB] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import run_once  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KAGGLE = REPO.parent / "shared" / "data" / "shopping_trends.csv"


def parse_size(text: str) -> int:
    units = {"KB": 1024, "MB": 1024**2, "GB": 1024**3}
    for unit, factor in units.items():
        if text.upper().endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def write_file(path: Path, size: int) -> int:
    """Write about ``size`` bytes of valid rows; return the number of rows."""
    with KAGGLE.open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    rows_written = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        out.write(",".join(header) + "\n")
        copy = 0
        while out.tell() < size:
            buf = io.StringIO()
            for r in rows:
                buf.write(",".join([f"{copy}-{r[0]}", *r[1:]]) + "\n")
            out.write(buf.getvalue())
            rows_written += len(rows)
            copy += 1
    return rows_written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2GB", help="file size, e.g. 2GB, 300MB")
    parser.add_argument("--workdir", type=Path, help="where to write (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the file and the home")
    parser.add_argument("--memory-limit", help="DuckDB memory limit for the ingest, e.g. 1GB")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="pp-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "big.csv"
    t0 = time.perf_counter()
    rows = write_file(path, parse_size(args.size))
    written = time.perf_counter() - t0
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURCHASE_PATTERNS_")}
    if args.memory_limit:
        env["PURCHASE_PATTERNS_DUCKDB_MEMORY_LIMIT"] = args.memory_limit
    summary_file, log = work / "summary.json", work / "ingest.log"
    seconds, peak_mb, code = run_once(
        [sys.executable, "-m", "purchase_patterns", "--home", str(work / "home"), "--json",
         "ingest", "--input", str(path)], env=env, log=log, stdout=summary_file)
    if code:
        sys.stderr.write(log.read_text(encoding="utf-8", errors="replace")[-4000:])
    out = summary_file.read_text(encoding="utf-8")
    summary = json.loads(out) if out.strip() else {}
    [inp] = summary.get("inputs") or [{}]
    print(json.dumps({
        "file_bytes": path.stat().st_size, "rows": rows, "write_seconds": round(written, 1),
        "memory_limit": args.memory_limit or "default (3GB)",
        "exit_code": code, "ingest_seconds": round(seconds, 1),
        "peak_rss_mb": round(peak_mb), "rows_in": inp.get("rows_in"),
        "rows_loaded": inp.get("rows_loaded"), "rows_rejected": inp.get("rows_rejected"),
    }, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Where the floor is for ingest (issue 9, item 3): one real ingest of a purchases CSV split
into its steps, beside DuckDB alone doing the parts no ingest of ours can skip.

- **ours, step by step**: ``ingest_file`` into a fresh home, as ``purchase-patterns ingest``
  runs it, with each step timed from the stage's own progress messages (landing scan, lake
  copy, read and check, warehouse insert, lake Parquet, commit) and, inside "read and check",
  the DuckDB statements that take longer than a second;
- **floor, copy**: DuckDB alone copying the CSV to Parquet with the warehouse's settings
  (memory limit, threads) and the lake's Zstd (the harness's floor uses DuckDB's defaults);
- **floor, contract**: DuckDB alone reading the file as the check pass does (every field as
  text, strict CSV) and evaluating every rule of the contract (``validate.check_select``: each
  field trimmed and typed, the list of problems per record), streamed straight to Parquet: no
  line numbers, no rejects table, no warehouse, no lake copy. Ingest has to do at least this
  and then write the rows somewhere durable.

Each floor figure is the median of ``--repeat`` runs on a warm page cache; the ingest runs
once per repeat on a fresh home (median per step).

    .venv/bin/python bench/ingest_floor.py bench/.cache/purchases_..._seed1_....csv [--repeat 3]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from purchase_patterns import validate, warehouse
from purchase_patterns.ingest import ingest_file
from purchase_patterns.lake import Lake
from purchase_patterns.settings import load_settings
from purchase_patterns.sources import detect

#: progress message of the stage → the step that starts with it
STEPS = {"detecting format": "detect format", "hashing": "landing scan (hash, lines)",
         "landing raw file in the lake": "lake copy of the raw file",
         "reading and validating": "read and check (DuckDB)",
         "loading": "warehouse insert, rejects, counts",
         "loading: rows inserted, not committed": "lake Parquet of the loaded rows",
         "loading: lake files written, not committed": "commit",
         "loading: committed": "manifest entry marked loaded"}
#: statements of the read-and-check step worth naming, by how they start
STATEMENTS = {"select count(*), count(*) filter": "structure pass (count, rejects)",
              "create temp table _checked": "check pass (typed rules, in file order)",
              "update _checked set _line": "line numbers"}


class _Timed:
    """A DuckDB connection whose ``execute`` records how long each named statement took."""

    def __init__(self, con: Any, seen: dict[str, float]) -> None:
        self._con, self._seen = con, seen

    def execute(self, sql: str, *args: Any) -> Any:
        t0 = time.perf_counter()
        out = self._con.execute(sql, *args)
        name = next((n for k, n in STATEMENTS.items() if sql.lstrip().startswith(k)), None)
        if name:
            self._seen[name] = self._seen.get(name, 0.0) + time.perf_counter() - t0
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def ours(csv: Path) -> dict[str, float]:
    """One ingest on a fresh home: seconds per step (and the named statements)."""
    with tempfile.TemporaryDirectory(dir=csv.parent) as d:
        settings = load_settings(home=Path(d))
        con = warehouse.connect(settings)
        marks: list[tuple[str, float]] = []
        seen: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            res = ingest_file(_Timed(con, seen), Lake(settings.lake), csv, run_id="floor",
                              on_step=lambda msg: marks.append((msg, time.perf_counter())))
        finally:
            con.close()
        end = time.perf_counter()
    if res.rows_rejected:
        raise SystemExit(f"{csv}: {res.rows_rejected} rows rejected; use a clean file")
    out = {"total": end - t0}
    for (msg, start), nxt in zip(marks, [*(m[1] for m in marks[1:]), end], strict=True):
        step = STEPS.get(msg, msg)
        out[step] = out.get(step, 0.0) + nxt - start
    return out | seen


def _duckdb_alone(work: Path, name: str, query_of: Any) -> float:
    """Seconds DuckDB alone takes to stream ``query_of(con)`` (a query and its parameters) to
    Zstd Parquet, on a connection with the warehouse's settings."""
    con = warehouse.connect(load_settings(home=work / "home"), path=work / f"{name}.duckdb")
    try:
        query, params = query_of(con)
        t0 = time.perf_counter()
        con.execute(f"copy ({query}) to {validate.lit(str(work / f'{name}.parquet'))} "  # noqa: S608 - package-built query, our temp path
                    "(format parquet, compression zstd)", params)
        return time.perf_counter() - t0
    finally:
        con.close()


def floor_copy(csv: Path, work: Path) -> float:
    return _duckdb_alone(work, "copy", lambda _con: ("select * from read_csv(?)", [str(csv)]))


def floor_contract(csv: Path, work: Path) -> float:
    def contract(con: Any) -> tuple[str, list[Any]]:
        spec = detect(csv, "auto", None)
        read = validate.read_source(con, spec, blank_lines=False)  # not timed: the view
        return validate.check_select(spec, read), []

    return _duckdb_alone(work, "contract", contract)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    runs: list[dict[str, float]] = []
    copies, contracts = [], []
    for _ in range(args.repeat):
        runs.append(ours(args.csv))
        with tempfile.TemporaryDirectory(dir=args.csv.parent) as d:
            copies.append(floor_copy(args.csv, Path(d)))
            contracts.append(floor_contract(args.csv, Path(d)))
    steps = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in runs[0]}
    report = {"csv": str(args.csv), "repeat": args.repeat, "ours": steps,
              "floor_copy": statistics.median(copies),
              "floor_contract": statistics.median(contracts)}
    for k, v in steps.items():
        print(f"ours: {k:45} {v:7.2f} s")
    print(f"floor: DuckDB CSV → Parquet (Zstd, our settings) {report['floor_copy']:7.2f} s")
    print(f"floor: DuckDB contract pass → Parquet             {report['floor_contract']:7.2f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

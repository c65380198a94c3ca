"""The floor: DuckDB alone on a purchases CSV, with its default settings.

    python bench/floor.py count   purchases.csv               # select count(*) from read_csv
    python bench/floor.py parquet purchases.csv out.parquet   # the CSV copied to Parquet

Nothing else happens in the process (no validation, no lake, no warehouse), so its time and
memory are what reading the file costs at least; the harness runs each in its own process.
DuckDB's defaults apply (all cores, 80% of memory, Snappy Parquet; our lake writes Zstd), so
the floor is the conservative one.
"""

from __future__ import annotations

import sys

import duckdb


def main(argv: list[str]) -> None:
    mode, csv, *rest = argv
    con = duckdb.connect()
    if mode == "count":
        print(con.execute("select count(*) from read_csv(?)", [csv]).fetchone()[0])
    elif mode == "parquet":
        con.read_csv(csv).write_parquet(rest[0])
    else:
        raise SystemExit(f"unknown mode {mode!r}: count or parquet")


if __name__ == "__main__":
    main(sys.argv[1:])

"""The ingest stage: land a raw file in the lake, validate every row, load one batch.

For one file:

1. detect the format from its header (``sources.detect``) and hash its bytes (SHA-256);
2. if a batch with that hash is already loaded, skip it and say so (re-runs add nothing);
3. land the file unchanged in the lake, content-addressed and partitioned by format and date;
4. read and check every row in DuckDB (``validate``);
5. in one transaction: valid rows → ``raw.purchases``, bad rows → ``raw.rejects`` (line,
   column, reason, raw text), the batch → ``raw.batches``; the transaction commits only when
   rows_in = rows_loaded + rows_rejected, counted from what was actually written;
6. write the validated rows as Parquet to the lake and a manifest entry.

The lake artefacts are content-addressed, so a crash anywhere leaves either no batch (and a
re-run redoes it) or a complete one.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from . import validate
from .errors import InputFileError
from .lake import Lake
from .schema import CANONICAL_NAMES
from .sources import SourceSpec, detect
from .warehouse import now, transaction

HASH_CHUNK = 8 * 1024 * 1024


@dataclass
class BatchResult:
    file: str
    batch_id: str | None = None
    format: str | None = None
    variant: str | None = None
    rows_in: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    duplicate_skipped: bool = False
    dated: bool | None = None
    error: str | None = None
    lake_raw_uri: str | None = None
    lake_parquet_uri: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    top_rejects: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _suffix(path: Path) -> str:
    suffixes = [s for s in path.suffixes if 1 < len(s) <= 8 and s[1:].isalnum()][-2:]
    return "".join(suffixes).lower() or ".dat"


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files named directly, and the visible files inside named folders (sorted)."""
    out: list[Path] = []
    for p in inputs:
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
            if not files:
                raise InputFileError(p, "folder holds no files to ingest")
            out.extend(files)
        else:
            out.append(p)
    return out


def ingest_file(con: duckdb.DuckDBPyConnection, lake: Lake, path: Path, *, run_id: str,
                fmt: str = "auto", mapping: Path | None = None,
                on_step: Any = None) -> BatchResult:
    """Ingest one file; file-level problems raise :class:`InputFileError`."""
    t0 = time.perf_counter()
    step = on_step or (lambda _msg: None)
    result = BatchResult(file=str(path))
    step("detecting format")
    spec = detect(path, fmt, mapping)
    result.format, result.variant, result.notes = spec.format, spec.variant, list(spec.notes)
    result.dated = "purchase_date" in spec.fields
    step("hashing")
    sha, size = sha256_file(path)
    result.batch_id = sha
    existing = con.execute(
        "select rows_in, rows_loaded, rows_rejected, lake_raw_uri, lake_parquet_uri "
        "from raw.batches where batch_id = ?", [sha]
    ).fetchone()
    if existing:
        result.rows_in, result.rows_loaded, result.rows_rejected = existing[:3]
        result.lake_raw_uri, result.lake_parquet_uri = existing[3:]
        result.duplicate_skipped = True
        result.seconds = time.perf_counter() - t0
        return result

    ingest_date = date.today().isoformat()
    prior = lake.manifest_entry(sha)
    if prior and prior.get("ingest_date"):
        ingest_date = str(prior["ingest_date"])  # keep one partition per content
    step("landing raw file in the lake")
    raw_rel = Lake.raw_rel(spec.format, ingest_date, sha, _suffix(path))
    result.lake_raw_uri = lake.uri(raw_rel) if lake.exists(raw_rel) else lake.put(path, raw_rel)

    step("reading and validating")
    read = validate.read_source(con, spec)
    if read.records + read.structural_rejects == 0:
        raise InputFileError(path, "file has a header but no data rows")
    validate.check(con, spec, read)

    step("loading")
    result.rows_in = read.records + read.structural_rejects
    _load(con, spec, sha, run_id, size, result, lake, ingest_date)
    result.top_rejects = [
        {"column": c, "reason": r, "rows": n}
        for c, r, n in con.execute(
            "select column_name, reason, count(*) from raw.rejects where batch_id = ? "
            "group by all order by 3 desc limit 5", [sha]
        ).fetchall()
    ]
    for tmp in ("_src", "_structural", "_checked"):
        con.execute(f"drop table if exists {tmp}")
    result.seconds = time.perf_counter() - t0
    return result


def _canonical_select(spec: SourceSpec, sha: str) -> str:
    """Typed canonical columns from ``_checked`` (NULL where the source lacks a field)."""
    have = set(spec.fields)
    exprs = []
    for name in CANONICAL_NAMES:
        if name == "batch_id":
            exprs.append(f"{validate.lit(sha)} as batch_id")
        elif name == "source_line":
            exprs.append("_line as source_line")
        elif name == "purchase_id":
            pid = f"{validate.lit(sha[:12])} || '-' || _line"
            exprs.append(f"coalesce(purchase_id, {pid}) as purchase_id" if name in have
                         else f"{pid} as purchase_id")
        elif name == "quantity":
            exprs.append("coalesce(quantity, 1) as quantity" if name in have else "1 as quantity")
        elif name == "season":
            derived = (
                "case when month(purchase_date) in (12, 1, 2) then 'Winter' "
                "when month(purchase_date) in (3, 4, 5) then 'Spring' "
                "when month(purchase_date) in (6, 7, 8) then 'Summer' "
                "when month(purchase_date) in (9, 10, 11) then 'Fall' end"
            ) if "purchase_date" in have else "null"
            exprs.append(f"coalesce(season, {derived}) as season" if name in have
                         else f"{derived} as season")
        elif name in have:
            exprs.append(name)
        else:
            exprs.append(f"null as {name}")
    return ", ".join(exprs)


def _load(con: duckdb.DuckDBPyConnection, spec: SourceSpec, sha: str, run_id: str, size: int,
          result: BatchResult, lake: Lake, ingest_date: str) -> None:
    file_label = spec.path.name
    lit = validate.lit
    with transaction(con):
        con.execute(
            f"insert into raw.purchases select {_canonical_select(spec, sha)} "  # noqa: S608
            "from _checked where len(_errors) = 0"
        )
        con.execute(
            f"""
            insert into raw.rejects
            select {lit(sha)}, ?, _line, e.c, e.r, _raw_text
            from (select _line, _raw_text, unnest(_errors) as e from _checked
                  where len(_errors) > 0)
            union all
            select {lit(sha)}, ?, line, column_name, reason, raw_text from _structural
            """,  # noqa: S608
            [file_label, file_label],
        )
        loaded = con.execute(
            "select count(*) from raw.purchases where batch_id = ?", [sha]
        ).fetchone()[0]
        rejected = con.execute(
            "select count(distinct line) from raw.rejects where batch_id = ?", [sha]
        ).fetchone()[0]
        if loaded + rejected != result.rows_in:
            raise RuntimeError(
                f"{spec.path}: reconciliation failed: {result.rows_in} rows in, "
                f"{loaded} loaded + {rejected} rejected"
            )
        result.rows_loaded, result.rows_rejected = loaded, rejected
        validated_rel = Lake.validated_rel(spec.format, ingest_date, sha)
        result.lake_parquet_uri = _write_parquet(con, lake, validated_rel, sha)
        con.execute(
            "insert into raw.batches values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [sha, run_id, str(spec.path), spec.format, spec.variant, size, result.rows_in,
             loaded, rejected, "purchase_date" in spec.fields, result.lake_raw_uri,
             result.lake_parquet_uri, now(), None],
        )
        lake.write_manifest_entry(sha, {
            "batch_id": sha, "source_file": spec.path.name, "format": spec.format,
            "variant": spec.variant, "size_bytes": size, "ingest_date": ingest_date,
            "landed_at": now().isoformat(), "run_id": run_id, "raw_uri": result.lake_raw_uri,
            "validated_uri": result.lake_parquet_uri, "rows_in": result.rows_in,
            "rows_loaded": loaded, "rows_rejected": rejected,
        })


def _write_parquet(con: duckdb.DuckDBPyConnection, lake: Lake, rel: str, sha: str) -> str:
    """Validated rows of the batch as Parquet in the lake (atomic; overwritten on redo)."""
    import tempfile

    if lake.local:
        dest = Path(lake._full(rel))
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        con.execute(
            f"copy (select * from raw.purchases where batch_id = {validate.lit(sha)}) "  # noqa: S608
            f"to {validate.lit(str(tmp))} (format parquet, compression zstd)"
        )
        tmp.replace(dest)
        return lake.uri(rel)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d) / "batch.parquet"
        con.execute(
            f"copy (select * from raw.purchases where batch_id = {validate.lit(sha)}) "  # noqa: S608
            f"to {validate.lit(str(tmp))} (format parquet, compression zstd)"
        )
        return lake.put(tmp, rel)

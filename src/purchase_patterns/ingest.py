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

Landing (``land_file``) and loading (``load_landed``) are separate steps so that the
``ingest_to_lake`` DAG can land files and the ``load_transform_validate`` DAG load them later;
``ingest_file`` does both. Lake artefacts are content-addressed and the warehouse load is one
transaction, so a crash anywhere leaves either no batch (a re-run redoes it) or a complete one.

Where the checked batch goes is a :class:`BatchTarget`: by default the DuckDB warehouse that
``con`` is (steps 5-6 in one transaction, :class:`DuckDBBatches`); on BigQuery ``con`` is a
scratch DuckDB database used for validation only, and
:class:`~purchase_patterns.bigquery_load.BigQueryBatches` loads the batch's Parquet files from
the lake with load jobs and records the batch last (see there for why that is crash-safe).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

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


def land_file(lake: Lake, path: Path, *, fmt: str = "auto", mapping: Path | None = None,
              on_step: Any = None) -> dict[str, Any]:
    """Land ``path`` unchanged in the lake (once per content) and return its manifest entry.

    The format is recognised first, so a file that cannot be used never enters the lake.
    """
    step = on_step or (lambda _msg: None)
    step("detecting format")
    spec = detect(path, fmt, mapping)
    step("hashing")
    sha, size = sha256_file(path)
    prior = lake.manifest_entry(sha)
    if prior:
        return prior
    ingest_date = date.today().isoformat()
    raw_rel = Lake.raw_rel(spec.format, ingest_date, sha, _suffix(path))
    step("landing raw file in the lake")
    raw_uri = lake.uri(raw_rel) if lake.exists(raw_rel) else lake.put(path, raw_rel)
    entry = {
        "batch_id": sha, "source_file": path.name, "source_path": str(path),
        "format": spec.format, "variant": spec.variant, "forced_format": fmt,
        "mapping_yaml": mapping.read_text(encoding="utf-8") if mapping else None,
        "size_bytes": size, "ingest_date": ingest_date, "landed_at": now().isoformat(),
        "raw_rel": raw_rel, "raw_uri": raw_uri, "status": "landed",
    }
    lake.write_manifest_entry(sha, entry)
    return entry


class BatchTarget(Protocol):
    """Where checked batches are recorded (``raw.purchases``, ``raw.rejects``,
    ``raw.batches``)."""

    def loaded(self, batch_id: str) -> tuple[Any, ...] | None:
        """``(rows_in, rows_loaded, rows_rejected, lake_parquet_uri, dated)`` of a recorded
        batch, or None."""
        ...

    def loaded_ids(self) -> set[str]: ...

    def atomic(self) -> Any:
        """A context in which staging and recording one batch is all or nothing."""
        ...

    def record(self, con: duckdb.DuckDBPyConnection, spec: SourceSpec, entry: dict[str, Any],
               run_id: str, result: BatchResult, rejects_uri: str) -> None:
        """Record a batch staged in ``con``'s ``raw`` tables (counts in ``result``)."""
        ...

    def release(self, con: duckdb.DuckDBPyConnection, batch_id: str) -> None:
        """Called after a batch is recorded: drop what ``con`` no longer needs."""
        ...


class DuckDBBatches:
    """The DuckDB warehouse: ``con`` is the warehouse, a batch is one transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def loaded(self, batch_id: str) -> tuple[Any, ...] | None:
        rows = self.con.execute(  # fetchall: DuckDB 2 keeps a half-read result open
            "select rows_in, rows_loaded, rows_rejected, lake_parquet_uri, dated "
            "from raw.batches where batch_id = ?", [batch_id]
        ).fetchall()
        return rows[0] if rows else None

    def loaded_ids(self) -> set[str]:
        return {r[0] for r in self.con.execute("select batch_id from raw.batches").fetchall()}

    def atomic(self) -> Any:
        return transaction(self.con)

    def record(self, con: duckdb.DuckDBPyConnection, spec: SourceSpec, entry: dict[str, Any],
               run_id: str, result: BatchResult, rejects_uri: str) -> None:
        con.execute(
            "insert into raw.batches values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [entry["batch_id"], run_id, entry.get("source_path") or entry["source_file"],
             spec.format, spec.variant, entry.get("size_bytes"), result.rows_in,
             result.rows_loaded, result.rows_rejected, "purchase_date" in spec.fields,
             entry.get("raw_uri"), result.lake_parquet_uri, now(), None],
        )

    def release(self, con: duckdb.DuckDBPyConnection, batch_id: str) -> None:
        return None


def pending_batches(con: duckdb.DuckDBPyConnection, lake: Lake,
                    target: BatchTarget | None = None) -> list[dict[str, Any]]:
    """Landed manifest entries that are not loaded in the warehouse yet (oldest first)."""
    loaded = (target or DuckDBBatches(con)).loaded_ids()
    return [e for e in lake.manifest() if e["batch_id"] not in loaded]


def ingest_file(con: duckdb.DuckDBPyConnection, lake: Lake, path: Path, *, run_id: str,
                fmt: str = "auto", mapping: Path | None = None,
                on_step: Any = None, target: BatchTarget | None = None) -> BatchResult:
    """Land and load one file; file-level problems raise :class:`InputFileError`."""
    t0 = time.perf_counter()
    entry = land_file(lake, path, fmt=fmt, mapping=mapping, on_step=on_step)
    result = load_landed(con, lake, entry, run_id=run_id, on_step=on_step, target=target)
    result.file = str(path)
    result.seconds = time.perf_counter() - t0
    return result


def load_landed(con: duckdb.DuckDBPyConnection, lake: Lake, entry: dict[str, Any], *,
                run_id: str, on_step: Any = None,
                target: BatchTarget | None = None) -> BatchResult:
    """Validate (in ``con``) and load one landed batch into ``target`` (default: the DuckDB
    warehouse ``con``). Loading a batch twice adds nothing."""
    t0 = time.perf_counter()
    step = on_step or (lambda _msg: None)
    target = target or DuckDBBatches(con)
    sha = entry["batch_id"]
    result = BatchResult(file=entry["source_file"], batch_id=sha, format=entry["format"],
                         variant=entry.get("variant"), lake_raw_uri=entry.get("raw_uri"))
    existing = target.loaded(sha)
    if existing:
        result.rows_in, result.rows_loaded, result.rows_rejected = existing[:3]
        result.lake_parquet_uri, result.dated = existing[3:]
        result.duplicate_skipped = True
        result.seconds = time.perf_counter() - t0
        return result
    with lake.local_copy(entry["raw_rel"]) as local, _mapping_file(entry) as mapping:
        spec = detect(local, entry.get("forced_format") or "auto", mapping)
        result.notes = list(spec.notes)
        result.dated = "purchase_date" in spec.fields
        step("reading and validating")
        read = validate.read_source(con, spec)
        if read.records + read.structural_rejects == 0:
            raise InputFileError(entry.get("source_path") or entry["source_file"],
                                 "file has a header but no data rows")
        validate.check(con, spec, read)
        step("loading")
        result.rows_in = read.records + read.structural_rejects
        _load(con, spec, entry, run_id, result, lake, target)
    result.top_rejects = [
        {"column": c, "reason": r, "rows": n}
        for c, r, n in con.execute(
            "select column_name, reason, count(*) from raw.rejects where batch_id = ? "
            "group by all order by 3 desc, 1, 2 limit 5", [sha]
        ).fetchall()
    ]
    target.release(con, sha)
    validate.cleanup(con)
    result.seconds = time.perf_counter() - t0
    return result


@contextmanager
def _mapping_file(entry: dict[str, Any]) -> Iterator[Path | None]:
    text = entry.get("mapping_yaml")
    if not text:
        yield None
        return
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "mapping.yaml"
        p.write_text(text, encoding="utf-8")
        yield p


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


def _load(con: duckdb.DuckDBPyConnection, spec: SourceSpec, entry: dict[str, Any],
          run_id: str, result: BatchResult, lake: Lake, target: BatchTarget) -> None:
    """Stage the checked rows in ``con``'s raw tables, reconcile the counts, write the
    batch's Parquet files to the lake and record the batch in ``target`` — all or nothing —
    then mark the manifest entry loaded."""
    sha, file_label = entry["batch_id"], entry["source_file"]
    lit = validate.lit
    with target.atomic():
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
        validate.relabel_rejects(con, sha, validate.error_labels(spec))
        loaded = con.execute(
            "select count(*) from raw.purchases where batch_id = ?", [sha]
        ).fetchone()[0]
        rejected = con.execute(
            "select count(distinct line) from raw.rejects where batch_id = ?", [sha]
        ).fetchone()[0]
        if loaded + rejected != result.rows_in:
            raise RuntimeError(
                f"{file_label}: reconciliation failed: {result.rows_in} rows in, "
                f"{loaded} loaded + {rejected} rejected"
            )
        result.rows_loaded, result.rows_rejected = loaded, rejected
        validated_rel = Lake.validated_rel(spec.format, entry["ingest_date"], sha)
        result.lake_parquet_uri = _write_parquet(con, lake, validated_rel, "raw.purchases", sha)
        rejects_uri = _write_parquet(con, lake, Lake.rejects_rel(spec.format, entry["ingest_date"],
                                                                 sha), "raw.rejects", sha)
        target.record(con, spec, entry, run_id, result, rejects_uri)
        lake.write_manifest_entry(sha, entry | {
            "status": "loaded", "run_id": run_id, "validated_uri": result.lake_parquet_uri,
            "rejects_uri": rejects_uri,
            "rows_in": result.rows_in, "rows_loaded": loaded, "rows_rejected": rejected,
        })


def _write_parquet(con: duckdb.DuckDBPyConnection, lake: Lake, rel: str, table: str,
                   sha: str) -> str:
    """The batch's rows of ``table`` as Parquet in the lake (atomic; overwritten on redo)."""
    query = f"select * from {table} where batch_id = {validate.lit(sha)}"  # noqa: S608
    with tempfile.TemporaryDirectory(dir=lake.root if lake.local else None) as d:
        tmp = Path(d) / "batch.parquet"
        con.execute(f"copy ({query}) to {validate.lit(str(tmp))} (format parquet, compression zstd)")
        return lake.move_in(tmp, rel)

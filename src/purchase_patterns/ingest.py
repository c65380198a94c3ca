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

import codecs
import hashlib
import tempfile
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import duckdb
import numpy as np

from . import validate
from .errors import InputFileError
from .lake import Lake
from .schema import CANONICAL_NAMES
from .sources import GZIP_CUT_SHORT, Sniff, SourceSpec, detect, normalised_copy
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


@dataclass(frozen=True)
class FileScan:
    """What one streamed read of a file tells before it is landed."""

    sha256: str
    size: int
    #: an empty line lies between lines of text (the CSV reader skips it; line numbers of the
    #: records after it need a look at the file's lines)
    blank_lines: bool
    #: first line holding the control character U+0001 (the line reader's spare delimiter)
    soh_line: int | None = None
    #: the last line holding text (trailing blank lines not counted); None for Parquet
    text_lines: int | None = None


def scan_file(path: Path, sniff: Sniff | None = None) -> FileScan:
    """Hash ``path`` (SHA-256 of its bytes) in one streamed read and, for text (``sniff`` of
    a text file), check what the CSV reader would not report: gzip data that is corrupt or
    cut short, UTF-16 that does not decode, and a physical line longer than
    :data:`validate.MAX_LINE_BYTES` (binary data, or line ends missing), all raised as
    :class:`InputFileError` so that such a file never enters the lake. Memory stays bounded
    whatever the size, also for gzip bombs (decompressed in bounded pieces)."""
    h = hashlib.sha256()
    size = 0
    text = sniff is not None and not sniff.is_parquet
    lines = _LineScan(path) if text else None
    gunzip = _Gunzip(path) if text and sniff.compression == "gzip" else None
    utf16 = None
    if text and sniff.encoding in ("utf-16", "utf-16-be"):
        codec = "utf-16-le" if sniff.encoding == "utf-16" else "utf-16-be"
        utf16 = codecs.getincrementaldecoder(codec)()
    # the hash runs in a second thread (hashlib lets go of the GIL) while this one scans
    with ThreadPoolExecutor(max_workers=1) as hasher, path.open("rb") as fh:
        hashing = None
        while chunk := fh.read(HASH_CHUNK):
            if hashing is not None:
                hashing.result()
            hashing = hasher.submit(h.update, chunk)
            size += len(chunk)
            if lines is None:
                continue
            for piece in (gunzip.feed(chunk) if gunzip else (chunk,)):
                lines.feed(_utf8(path, utf16, piece) if utf16 else piece)
        if hashing is not None:
            hashing.result()
    if gunzip:
        gunzip.close()
    if utf16:
        _utf8(path, utf16, b"", final=True)
    return FileScan(h.hexdigest(), size, bool(lines and lines.blank),
                    lines.soh_line if lines else None, lines.text_lines if lines else None)


def _utf8(path: Path, decoder: codecs.IncrementalDecoder, data: bytes, *,
          final: bool = False) -> bytes:
    """UTF-16 bytes as UTF-8 (so that line ends are single bytes for the line scan)."""
    try:
        return decoder.decode(data, final=final).encode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(path, f"not valid UTF-16 text ({exc.reason})") from None


class _Gunzip:
    """Streams the members of a gzip file (concatenated members too, as the reader accepts),
    verifying each one's checksum and length; output comes in pieces of at most
    ``HASH_CHUNK`` bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.inflate = zlib.decompressobj(wbits=31)
        self.carry = b""

    def _corrupt(self, problem: str) -> InputFileError:
        return InputFileError(self.path, f"gzip data is corrupt ({problem})")

    def feed(self, data: bytes) -> Iterator[bytes]:
        data = self.carry + data
        self.carry = b""
        while True:
            if self.inflate.eof:
                if len(data) < 2:
                    self.carry = data  # a next member's magic may be cut by the chunk
                    return
                if data[:2] != b"\x1f\x8b":
                    raise self._corrupt("data after the end of the gzip stream")
                self.inflate = zlib.decompressobj(wbits=31)
            try:
                out = self.inflate.decompress(data, HASH_CHUNK)
            except zlib.error as exc:
                raise self._corrupt(str(exc)) from None
            if out:
                yield out
            if self.inflate.eof:
                data = self.inflate.unused_data
                continue
            data = self.inflate.unconsumed_tail
            if not data and len(out) < HASH_CHUNK:
                return  # all output of the input so far is out: needs more input

    def close(self) -> None:
        if self.carry or not self.inflate.eof:
            raise self._corrupt(GZIP_CUT_SHORT)


class _LineScan:
    """Streams a text file's bytes looking for the first physical line longer than the CSV
    reader's limit (raised, naming the line) and for a blank line followed by more text.
    Line ends are LF, CR LF or a lone CR; work per chunk is vectorised (bytes methods for
    chunks whose line ends are all LF, NumPy for the rest)."""

    LIMIT = validate.MAX_LINE_BYTES
    BLANKS = (b"\n\n", b"\r\r", b"\n\r")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ends = 0  # line ends before the current chunk
        self.run = 0  # bytes of the unfinished line at the end of the chunks seen
        self.last = b""  # last byte seen
        self.blank = False  # a blank line with text after it
        self.blank_pending = False  # a blank line, text after it not seen yet
        self.soh_line: int | None = None
        self.text_lines = 0  # line number of the last line holding text so far

    @staticmethod
    def _ends(seg: bytes) -> int:
        return seg.count(b"\n") + seg.count(b"\r") - seg.count(b"\r\n")

    def _too_long(self, line: int) -> InputFileError:
        return InputFileError(
            self.path, f"line is longer than {self.LIMIT:,} bytes: not line-delimited text "
            "there (binary data, or line ends missing)", line=line)

    def feed(self, chunk: bytes) -> None:
        if self.last != b"\r" and chunk.find(b"\r") < 0 and self._feed_lf(chunk):
            return
        self._feed_any(chunk)

    def _feed_lf(self, chunk: bytes) -> bool:
        """:meth:`_feed_any` for a chunk whose line ends are all LF, in a few passes of
        ``bytes`` methods (C loops) instead of NumPy arrays. Returns False, changing nothing,
        when a stretch of the chunk might hold a line over the limit (then the exact path
        finds it)."""
        first, last_end = chunk.find(b"\n"), chunk.rfind(b"\n")
        if first >= 0:
            # a line longer than LIMIT between two LFs holds an aligned block of LIMIT // 2
            # bytes without one
            block = self.LIMIT // 2
            for start in range(first, last_end, block):
                if chunk.find(b"\n", start, min(start + block, last_end + 1)) < 0:
                    return False
        ends = chunk.count(b"\n")
        text_end = len(chunk.rstrip(b"\n"))  # one past the last byte that is not an LF
        if not self.blank:
            self._look_for_blank_lf(chunk, text_end)
        if self.soh_line is None and (k := chunk.find(b"\x01")) >= 0:
            self.soh_line = self.ends + chunk.count(b"\n", 0, k) + 1
        if text_end:
            # every byte after the last text byte is an LF
            self.text_lines = self.ends + ends - (len(chunk) - text_end) + 1
        if first < 0:
            self.run += len(chunk)
        else:
            if self.run + first > self.LIMIT:
                raise self._too_long(self.ends + 1)
            self.ends += ends
            self.run = len(chunk) - last_end - 1
        if self.run > self.LIMIT:
            raise self._too_long(self.ends + 1)
        self.last = chunk[-1:]
        return True

    def _look_for_blank_lf(self, chunk: bytes, text_end: int) -> None:
        """:meth:`_look_for_blank` for a chunk with LF line ends (and no CR before it)."""
        if self.blank_pending and text_end:
            self.blank = True
            return
        if self.last == b"\n" and chunk[:1] == b"\n":
            after = 1  # first byte after the blank line's end
        elif (i := chunk.find(b"\n\n")) >= 0:
            after = i + 2
        else:
            return
        if text_end > after:
            self.blank = True
        else:
            self.blank_pending = True

    def _feed_any(self, chunk: bytes) -> None:
        arr = np.frombuffer(chunk, dtype=np.uint8)
        is_end = (arr == 10) | (arr == 13)
        idx = np.flatnonzero(is_end)
        joined = self.last == b"\r" and chunk[:1] == b"\n"  # a CR LF cut by the chunk
        if not self.blank:
            self._look_for_blank(chunk, is_end)
        if self.soh_line is None and (k := chunk.find(b"\x01")) >= 0:
            self.soh_line = self.ends + self._ends(chunk[:k]) - joined + 1
        if not bool(is_end.all()):
            last = len(chunk) - 1 - int(np.argmax(~is_end[::-1]))  # last byte of text
            self.text_lines = self.ends + self._ends(chunk[:last]) - joined + 1
        if idx.size == 0:
            self.run += len(chunk)
        else:
            if self.run + int(idx[0]) > self.LIMIT:
                raise self._too_long(self.ends + 1)
            gaps = np.diff(idx) - 1
            if gaps.size and int(gaps.max()) > self.LIMIT:
                j = int(gaps.argmax())
                before = self._ends(chunk[: int(idx[j]) + 1]) - joined
                raise self._too_long(self.ends + before + 1)
            self.ends += self._ends(chunk) - joined
            self.run = len(chunk) - int(idx[-1]) - 1
        if self.run > self.LIMIT:
            raise self._too_long(self.ends + 1)
        self.last = chunk[-1:]

    def _look_for_blank(self, chunk: bytes, is_end: np.ndarray) -> None:
        if self.blank_pending and not bool(is_end.all()):
            self.blank = True
            return
        seg = self.last + chunk
        found = [i for i in (seg.find(b) for b in self.BLANKS) if i >= 0]
        if not found:
            return
        after = min(found) + 2 - len(self.last)  # first byte after the blank line's end
        if after < len(chunk) and not bool(is_end[max(after, 0):].all()):
            self.blank = True
        else:
            self.blank_pending = True


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
    scan = scan_file(path, spec.sniff)
    sha, size = scan.sha256, scan.size
    if spec.delimiter is None and scan.soh_line is not None:
        raise InputFileError(path, "control character U+0001 in a whitespace-separated log",
                             line=scan.soh_line)
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
        "blank_lines": scan.blank_lines, "lines": scan.text_lines,
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

    def loaded_ids(self, run_id: str | None = None) -> set[str]:
        """Ids of the recorded batches (only those run ``run_id`` recorded, when given)."""
        ...

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

    def loaded_ids(self, run_id: str | None = None) -> set[str]:
        if run_id is None:
            rows = self.con.execute("select batch_id from raw.batches").fetchall()
        else:
            rows = self.con.execute("select batch_id from raw.batches where run_id = ?",
                                    [run_id]).fetchall()
        return {r[0] for r in rows}

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
                    target: BatchTarget | None = None, *,
                    run_id: str | None = None) -> list[dict[str, Any]]:
    """Landed manifest entries that are not loaded in the warehouse yet (oldest first);
    entries found unusable when they were read are left out. Given ``run_id``, also the
    batches that run already recorded: a retry of a run that stopped after loading some
    batches (maybe before their manifest entries were marked loaded) reports them again and
    :func:`load_landed` repairs their entries, without loading them twice."""
    target = target or DuckDBBatches(con)
    loaded = target.loaded_ids()
    again = target.loaded_ids(run_id) if run_id is not None else set()
    return [e for e in lake.manifest()
            if (e["batch_id"] not in loaded or e["batch_id"] in again)
            and e.get("status") != "unusable"]


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
        if entry.get("status") != "loaded":  # a crash came between commit and manifest
            _mark_loaded(lake, entry, entry.get("run_id") or run_id, entry["format"], result)
        result.seconds = time.perf_counter() - t0
        return result
    source = entry.get("source_path") or entry["source_file"]
    with lake.local_copy(entry["raw_rel"]) as local, _mapping_file(entry) as mapping, \
            _scratch(con) as scratch:
        try:
            spec = detect(local, entry.get("forced_format") or "auto", mapping)
            result.notes = list(spec.notes)
            result.dated = "purchase_date" in spec.fields
            step("reading and validating")
            if spec.sniff.encoding.startswith("utf-16"):
                # DuckDB's reader knows only little-endian, and no surrogate pairs (emoji)
                spec = normalised_copy(spec, scratch)
            blank_lines = bool(entry.get("blank_lines", True))
            try:
                read = validate.read_source(con, spec, blank_lines=blank_lines, scratch=scratch)
            except validate.LineEndsError:
                result.notes.append("line ends mixed LF, CR LF and CR: read as LF")
                spec = normalised_copy(spec, scratch, line_ends=True)
                read = validate.read_source(con, spec, blank_lines=blank_lines, scratch=scratch)
            if read.records + read.structural_rejects == 0:
                raise InputFileError(source, "file has a header but no data rows")
            validate.check(con, spec, read)
            validate.account_lines(con, spec, read, entry.get("lines"))
        except (InputFileError, validate.LineEndsError) as exc:
            # name the user's file, not the lake object; the landed file stays in the lake as
            # received, marked unusable with the reason, and is not loaded again
            err = (InputFileError(source, exc.problem, line=exc.line, column=exc.column)
                   if isinstance(exc, InputFileError) else
                   InputFileError(source, "cannot be parsed as delimited text (line ends)"))
            lake.write_manifest_entry(sha, entry | {"status": "unusable", "error": str(err)})
            raise err from None
        step("loading")
        result.rows_in = read.records + read.structural_rejects
        _load(con, spec, entry, run_id, result, lake, target, step)
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
def _scratch(con: duckdb.DuckDBPyConnection) -> Iterator[Path]:
    """A private folder for a normalised copy of the file, in the warehouse's spill folder
    (on the same disk as the data, unlike the system's temporary folder; what a killed run
    leaves there is removed by ``warehouse.sweep_spill``)."""
    spill = con.execute("select current_setting('temp_directory')").fetchone()[0] or None
    if spill:
        Path(spill).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=spill, prefix="ingest-") as d:
        yield Path(d)


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
          run_id: str, result: BatchResult, lake: Lake, target: BatchTarget,
          step: Any) -> None:
    """Stage the checked rows in ``con``'s raw tables, reconcile the counts, write the
    batch's Parquet files to the lake and record the batch in ``target`` — all or nothing;
    the manifest entry is marked loaded only after that (a crash before it leaves 'landed',
    which a re-run repairs)."""
    sha, file_label = entry["batch_id"], entry["source_file"]
    lit = validate.lit
    with target.atomic():
        if "purchase_id" in spec.fields:
            _flag_loaded_purchase_ids(con)
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
        step("loading: rows inserted, not committed")
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
        step("loading: lake files written, not committed")
        target.record(con, spec, entry, run_id, result, rejects_uri)
    step("loading: committed")
    _mark_loaded(lake, entry, run_id, spec.format, result)


def _mark_loaded(lake: Lake, entry: dict[str, Any], run_id: str, fmt: str,
                 result: BatchResult) -> None:
    """Record in the batch's manifest entry that it is in the warehouse, with its counts."""
    lake.write_manifest_entry(entry["batch_id"], entry | {
        "status": "loaded", "run_id": run_id, "validated_uri": result.lake_parquet_uri,
        "rejects_uri": lake.uri(Lake.rejects_rel(fmt, entry["ingest_date"], entry["batch_id"])),
        "rows_in": result.rows_in, "rows_loaded": result.rows_loaded,
        "rows_rejected": result.rows_rejected,
    })


def _flag_loaded_purchase_ids(con: duckdb.DuckDBPyConnection) -> None:
    """Reject rows whose purchase id another batch already loaded: a re-exported file that
    overlaps an earlier one adds only its new purchases. (On BigQuery ``con`` is the scratch
    database, so only ids repeated within the batch are caught there.)"""
    con.execute(
        """
        update _checked set _errors = list_append(_errors, struct_pack(
            c := 'purchase_id',
            r := 'purchase id already loaded (batch ' || left(d.batch_id, 12) || ', line '
                 || d.source_line || ')'))
        from (select purchase_id, arg_min(batch_id, source_line) as batch_id,
                     min(source_line) as source_line
              from raw.purchases
              where purchase_id in (select purchase_id from _checked)
              group by purchase_id) as d
        where _checked.purchase_id = d.purchase_id
        """
    )


def _write_parquet(con: duckdb.DuckDBPyConnection, lake: Lake, rel: str, table: str,
                   sha: str) -> str:
    """The batch's rows of ``table`` as Parquet in the lake (atomic; overwritten on redo)."""
    query = f"select * from {table} where batch_id = {validate.lit(sha)}"  # noqa: S608
    with lake.temp_dir() as d:
        tmp = d / "batch.parquet"
        con.execute(f"copy ({query}) to {validate.lit(str(tmp))} (format parquet, compression zstd)")
        return lake.move_in(tmp, rel)

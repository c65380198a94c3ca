"""Malformed-input corpus: one table of cases, each built from the real files (Kaggle shopping
trends, CDNOW) or from scratch, each with its expected outcome written from the way the case
is built: either one exact one-line error naming the file (and line), or exactly which rows
load and which are quarantined with line, column and reason. Every case also checks that
rows_in = rows_loaded + rows_rejected, counted from the warehouse tables, and that a file
that cannot be used leaves nothing in the warehouse or the lake.

Most cases run in-process through ``ingest_file``; ``test_cli_*`` runs a representative
handful through the real CLI to show one line on stderr, no traceback, exit 2 (and a
traceback with ``--debug``).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from purchase_patterns import warehouse
from purchase_patterns.errors import InputFileError
from purchase_patterns.ingest import expand_inputs, ingest_file, pending_batches
from purchase_patterns.lake import Lake
from purchase_patterns.settings import load_settings

AMOUNT = "Purchase Amount (USD)"
MISSING_COLUMNS = "MISSING COLUMNS: Expected Number of Columns: 19 Found: {}"
NO_HEADER = (
    "no recognisable header: expected the customer shopping trends columns (Customer ID, "
    "Item Purchased, Category, Purchase Amount ...), a CDNOW log, or a column mapping "
    "(--mapping FILE)"
)
LONG_LINE = ("line is longer than 2,000,000 bytes: not line-delimited text there "
             "(binary data, or line ends missing)")
RUNAWAY_QUOTE = ("a quoted value starts on this line and never ends (unterminated quote): "
                 "the rest of the file would be one value")


# -- the real data, as the builders see it --------------------------------------------------


@dataclass(frozen=True)
class Real:
    header: list[str]
    rows: list[list[str]]  # Kaggle rows, every field as text (no field holds , or ")
    cdnow: list[str]  # CDNOW_master data lines (whitespace separated, no header)

    def lines(self, n: int, edits: dict[int, dict[str, str]] | None = None,
              header: list[str] | None = None) -> list[str]:
        """Header and the first ``n`` Kaggle rows as CSV lines; ``edits[i][column] = text``
        replaces the raw text of a field of data row ``i`` (0-based; it sits on line i + 2)."""
        out = [",".join(header or self.header)]
        for i, r in enumerate(self.rows[:n]):
            fields = dict(zip(self.header, r, strict=True))
            fields.update((edits or {}).get(i, {}))
            out.append(",".join(fields[h] for h in self.header))
        return out

    def dated(self, case: str, n: int, dates: dict[int, str] | None = None,
              ids: dict[int, int] | None = None, edits: dict[int, dict[str, str]] | None = None,
              ) -> list[str]:
        """A dated log from the first ``n`` rows: ``Purchase ID`` (``<case>-<i>``, or the id
        of row ``ids[i]``: ids are unique per case, as the corpus shares one warehouse) first
        and ``Purchase Date`` (2024-01-<i+1> unless ``dates`` says otherwise) last."""
        base = self.lines(n, edits)
        out = ["Purchase ID," + base[0] + ",Purchase Date"]
        for i, line in enumerate(base[1:]):
            pid = f"{case}-{(ids or {}).get(i, i)}"
            day = (dates or {}).get(i, f"2024-01-{i % 28 + 1:02d}")
            out.append(f"{pid},{line},{day}")
        return out


def text(lines: list[str], eol: str = "\n", final: bool = True) -> bytes:
    return (eol.join(lines) + (eol if final else "")).encode("utf-8")


# -- expected outcomes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    line: int
    #: column as named in the user's file; None when the CSV reader (not a rule) rejected it
    column: str | None
    #: the exact reason; one ending in "…" is a prefix (the reader's own wording follows)
    reason: str


@dataclass(frozen=True)
class Loads:
    loaded: int
    rejects: tuple[Rejected, ...] = ()
    #: further checks on what was loaded: ``check(con, batch_id, real)``
    check: Callable[[duckdb.DuckDBPyConnection, str, Real], None] | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fails:
    problem: str  # exactly what follows "<path>[:<line>]: "; ending in "…" means a prefix
    line: int | None = None


@dataclass(frozen=True)
class Case:
    name: str
    #: build(folder, real) writes the input under ``folder`` and returns its path
    build: Callable[[Path, Real], Path]
    expect: Loads | Fails
    fmt: str = "auto"
    #: the input is given as the CLI takes it (a folder stands for the files in it)
    expand: bool = False
    marks: tuple[Any, ...] = field(default=())


def write(name: str, data: bytes | Callable[[Real], bytes]) -> Callable[[Path, Real], Path]:
    def build(folder: Path, real: Real) -> Path:
        path = folder / name
        path.write_bytes(data(real) if callable(data) else data)
        return path

    return build


def values(sql: str, expected: list[tuple] | Callable[[Real], list[tuple]],
           ) -> Callable[[duckdb.DuckDBPyConnection, str, Real], None]:
    """A check: ``sql`` (one ``?`` for the batch id) returns exactly ``expected`` (or what
    ``expected(real)`` says, for values taken from the real rows)."""

    def check(con: duckdb.DuckDBPyConnection, batch: str, real: Real) -> None:
        want = expected(real) if callable(expected) else expected
        assert con.execute(sql, [batch]).fetchall() == want

    return check


def gz_cut(real: Real) -> bytes:
    data = gzip.compress(text(real.lines(400)))
    return data[: len(data) // 2]


def gz_bad_crc(real: Real) -> bytes:
    data = bytearray(gzip.compress(text(real.lines(30))))
    data[-8] ^= 0xFF  # first byte of the CRC-32 trailer
    return bytes(data)


def utf16(real: Real, codec: str, bom: bytes) -> bytes:
    lines = real.lines(6, {3: {"Item Purchased": "Jéans"}})
    return bom + "\n".join(lines).encode(codec) + "\n".encode(codec)


def latin1_late(real: Real) -> bytes:
    """Clean UTF-8 for more than the 64 KB sniff window, then one row with a byte that is not
    UTF-8: the reader rejects that row only."""
    lines = real.lines(1000)
    body = text(lines[:1000])
    bad = lines[1000].replace("Gray", "Gr\xe9y").encode("latin-1") if "Gray" in lines[1000] \
        else lines[1000].encode() + b"\xff"
    return body + bad + b"\n"


def wide(real: Real) -> bytes:
    extra = [f"x{i}" for i in range(1200)]
    lines = real.lines(3)
    return text([lines[0] + "," + ",".join(extra)]
                + [ln + "," + ",".join("1" for _ in extra) for ln in lines[1:]])


def parquet_bad_types(folder: Path, real: Real) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "types.parquet"
    pq.write_table(pa.table({"Customer ID": ["1", "2", None], AMOUNT: ["5", "abc", "7"],
                             "Age": [30.0, 30.5, 200.0]}), path)
    return path


def parquet_no_amount(folder: Path, real: Real) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "no_amount.parquet"
    pq.write_table(pa.table({"Customer ID": ["1"], "Age": [30]}), path)
    return path


def fifo(folder: Path, real: Real) -> Path:
    path = folder / "pipe.csv"
    os.mkfifo(path)
    return path


def directory(folder: Path, real: Real) -> Path:
    path = folder / "a_folder.csv"
    path.mkdir()
    return path


def empty_folder(folder: Path, real: Real) -> Path:
    path = folder / "inbox"
    path.mkdir()
    return path


def long_line(real: Real) -> bytes:
    lines = real.lines(5, {2: {"Item Purchased": "x" * 2_100_000}})
    return text(lines)


def quoted_newline_then_bad(real: Real) -> bytes:
    """Row 1's item spans lines 3-5; row 3 (on line 7) has a bad amount."""
    return text(real.lines(5, {1: {"Item Purchased": '"Blouse\nin two\nlines"'},
                               3: {AMOUNT: "lots"}}))


def with_blank_lines(real: Real) -> bytes:
    lines = real.lines(6, {4: {"Age": "old"}})
    # 2 leading blank lines; header on 3; rows on 4, 5, [blank 6], 7, [blank 8, 9], 10, 11, 12
    return text(["", ""] + lines[:3] + [""] + [lines[3]] + ["", ""] + lines[4:])


def cdnow(real: Real, lines: list[str], eol: str = "\n") -> bytes:
    return text(lines, eol)


def mixed_eol(real: Real) -> bytes:
    lines = real.lines(6, {4: {AMOUNT: "-1"}})
    eols = ["\r\n", "\n", "\r\n", "\n", "\r", "\n"]
    return "".join(ln + eol for ln, eol in zip(lines, eols + ["\n"], strict=False)).encode()


def hostile(real: Real) -> bytes:
    return text(real.lines(3, {0: {"Item Purchased": "'; drop table raw.purchases; --"},
                               1: {"Item Purchased": '"=HYPERLINK(""http://x"",""y"")"'},
                               2: {"Color": "Robert'); DROP TABLE Students;--"}}))


def hostile_header(real: Real) -> bytes:
    lines = real.lines(2)
    return text([lines[0] + ",\"x'); drop table raw.batches; --\""]
                + [ln + ",1" for ln in lines[1:]])


# -- the corpus --------------------------------------------------------------------------------


CASES: list[Case] = [
    # files that cannot be used at all: one line naming the file, nothing loaded or landed
    Case("empty", write("empty.csv", b""), Fails("file is empty")),
    Case("blank lines only", write("blank.csv", b"\n\n   \n\r\n"),
         Fails("file holds no data (only blank lines)")),
    Case("BOM only", write("bom.csv", codecs.BOM_UTF8), Fails("file holds no data (only blank lines)")),
    Case("header only", write("header.csv", lambda r: text(r.lines(0))),
         Fails("file has a header but no data rows")),
    Case("header only, no line end", write("header_noeol.csv", lambda r: text(r.lines(0), final=False)),
         Fails("file has a header but no data rows")),
    Case("header and blank CRLF lines", write("header_blank.csv", lambda r: text(r.lines(0) + ["", ""], "\r\n")),
         Fails("file has a header but no data rows")),
    Case("gzip of a header only", write("header.csv.gz", lambda r: gzip.compress(text(r.lines(0)))),
         Fails("file has a header but no data rows")),
    Case("binary garbage", write("garbage.csv", bytes(range(256)) * 64),
         Fails("not delimited text (binary content)")),
    Case("image bytes", write("photo.csv", b"\x89PNG\r\n\x1a\n" + bytes(4096)),
         Fails("not delimited text (binary content)")),
    Case("prose, no delimiter", write("prose.txt", b"hello world\nthis is prose\n"),
         Fails("not delimited text: no ',', ';', tab or '|' in the header line", line=1)),
    Case("unknown header", write("unknown.csv", b"a,b,c\n1,2,3\n"), Fails(NO_HEADER, line=1)),
    Case("renamed amount column", write("renamed.csv", lambda r: text(
        r.lines(3, header=[("Spend" if h == AMOUNT else h) for h in r.header]))),
        Fails(NO_HEADER, line=1)),
    Case("required column missing (forced kaggle)", write("no_amount.csv", lambda r: text(
        [",".join(h for h in r.header if h != AMOUNT), "1,55,Male"])),
        Fails("required column(s) missing: amount", line=1), fmt="kaggle"),
    Case("duplicated column", write("dup.csv", lambda r: text(
        [r.lines(0)[0] + ",Age"] + [ln + ",40" for ln in r.lines(2)[1:]])),
        Fails("duplicated column(s) in header: Age", line=1)),
    Case("duplicated after normalising names", write("dup_norm.csv", lambda r: text(
        [r.lines(0)[0] + ",customer_id"] + [ln + ",9" for ln in r.lines(2)[1:]])),
        Fails("duplicated column(s) in header: Customer ID, customer_id", line=1)),
    Case("empty column name", write("empty_name.csv", lambda r: text(
        [r.lines(0)[0] + ","] + [ln + ",x" for ln in r.lines(2)[1:]])),
        Fails("header has an empty column name at position 20", line=1)),
    Case("gzip cut short", write("cut.csv.gz", gz_cut),
         Fails("gzip data is corrupt (unexpected end of data: the file is cut short)")),
    Case("gzip with a bad checksum", write("crc.csv.gz", gz_bad_crc), Fails("gzip data is corrupt (…")),
    Case("gzip with trailing bytes", write("trail.csv.gz", lambda r: gzip.compress(text(r.lines(4))) + bytes(64)),
         Fails("gzip data is corrupt (data after the end of the gzip stream)")),
    Case("gzip holding nothing", write("nothing.csv.gz", gzip.compress(b"")),
         Fails("file is empty (gzip holds no data)")),
    Case("gzip header bytes only", write("stub.csv.gz", gzip.compress(b"abc")[:10]),
         Fails("gzip data is corrupt (…")),
    Case("path does not exist", lambda folder, real: folder / "absent.csv", Fails("file does not exist")),
    Case("path is a directory", directory, Fails("is a directory, not a file")),
    Case("folder with no files", empty_folder, Fails("folder holds no files to ingest"),
         expand=True),
    Case("a FIFO, not a file", fifo, Fails("not a regular file (a pipe, socket or device)")),
    Case("line over 2 MB", write("long.csv", long_line), Fails(LONG_LINE, line=4)),
    Case("corrupt Parquet", write("broken.parquet", b"PAR1" + bytes(range(256)) * 8),
         Fails("unreadable Parquet file (…")),
    Case("Parquet without an amount", parquet_no_amount, Fails("required column(s) missing: amount")),
    Case("control character in a CDNOW log", write("cdnow_soh.txt", lambda r: cdnow(
        r, [*r.cdnow[:2], r.cdnow[2] + "\x01", *r.cdnow[3:6]])),
        Fails("control character U+0001 in a whitespace-separated log", line=3)),
    Case("broken UTF-16", write("bad_utf16.csv", lambda r: codecs.BOM_UTF16_BE + "\n".join(
        r.lines(3)).encode("utf-16-be") + b"\xd8\x00\x00A\n"), Fails("not valid UTF-16 text (…")),

    # row problems: exactly the bad rows are quarantined, with line, column and reason
    Case("clean real rows", write("clean.csv", lambda r: text(r.lines(20))), Loads(20)),
    Case("non-numeric amounts", write("amounts.csv", lambda r: text(r.lines(12, {
        4: {AMOUNT: "abc"}, 7: {AMOUNT: "$12.50"}, 9: {AMOUNT: '"1,234.50"'}, 10: {AMOUNT: ""}}))),
        Loads(10, (Rejected(6, AMOUNT, "not a number"), Rejected(12, AMOUNT, "missing value")),
              check=values("select source_line, amount::varchar from raw.purchases where "
                           "batch_id = ? and source_line in (9, 11) order by 1",
                           [(9, "12.50"), (11, "1234.50")]))),
    Case("negative and huge amounts", write("neg.csv", lambda r: text(r.lines(6, {
        1: {AMOUNT: "-5"}, 3: {AMOUNT: "10000000"}, 4: {AMOUNT: "0"}}))),
        Loads(4, (Rejected(3, AMOUNT, "amount must be between 0 and 10,000,000"),
                  Rejected(5, AMOUNT, "amount must be between 0 and 10,000,000")))),
    Case("absurd ages", write("ages.csv", lambda r: text(r.lines(8, {
        0: {"Age": "200"}, 2: {"Age": "-1"}, 4: {"Age": "30.5"}, 6: {"Age": "ninety"}}))),
        Loads(4, (Rejected(2, "Age", "age must be between 0 and 120"),
                  Rejected(4, "Age", "age must be between 0 and 120"),
                  Rejected(6, "Age", "not a whole number"),
                  Rejected(8, "Age", "not a whole number")))),
    Case("absurd dates", write("dates.csv", lambda r: text(r.dated("dates", 7, dates={
        1: "1899-12-31", 2: "2999-01-01", 3: "2023-02-30", 4: "05/01/2024", 5: ""}))),
        Loads(2, (Rejected(3, "Purchase Date", "date out of range (before 1970 or in the future)"),
                  Rejected(4, "Purchase Date", "date out of range (before 1970 or in the future)"),
                  Rejected(5, "Purchase Date", "not a date in the format %Y-%m-%d"),
                  Rejected(6, "Purchase Date", "not a date in the format %Y-%m-%d"),
                  Rejected(7, "Purchase Date", "missing value")))),
    Case("unknown states, codes accepted", write("states.csv", lambda r: text(r.lines(5, {
        0: {"Location": "Narnia"}, 1: {"Location": "tx"}, 2: {"Location": "DC"},
        3: {"Location": "Ontario"}}))),
        Loads(3, (Rejected(2, "Location", "not a US state (full name or two-letter code)"),
                  Rejected(5, "Location", "not a US state (full name or two-letter code)")),
              check=values("select source_line, state from raw.purchases where batch_id = ? "
                           "and source_line in (3, 4) order by 1",
                           [(3, "Texas"), (4, "District of Columbia")]))),
    Case("unknown enumerations", write("enums.csv", lambda r: text(r.lines(5, {
        0: {"Gender": "Robot"}, 1: {"Season": "Monsoon"}, 2: {"Frequency of Purchases": "Hourly"},
        3: {"Subscription Status": "maybe"}}))),
        Loads(1, (Rejected(2, "Gender", "unknown gender (expected Male, Female, Non-binary, Other)"),
                  Rejected(3, "Season", "unknown season (expected Winter, Spring, Summer or Fall)"),
                  Rejected(4, "Frequency of Purchases",
                           "unknown purchase frequency (expected Weekly, Fortnightly, Bi-Weekly, "
                           "Monthly, Quarterly, Every 3 Months or Annually)"),
                  Rejected(5, "Subscription Status", "expected Yes or No")))),
    Case("duplicate rows in a snapshot", write("dup_rows.csv", lambda r: text(
        r.lines(4) + r.lines(2)[1:])),
        Loads(4, (Rejected(6, "Customer ID", "duplicate customer id in a one-row-per-customer file (first on line 2)"),
                  Rejected(7, "Customer ID", "duplicate customer id in a one-row-per-customer file (first on line 3)")))),
    Case("same customer, conflicting attributes (snapshot)", write("conflict.csv", lambda r: text(
        r.lines(3) + r.lines(1, {0: {"Age": "33", "Location": "Ohio"}})[1:])),
        Loads(3, (Rejected(5, "Customer ID", "duplicate customer id in a one-row-per-customer file (first on line 2)"),))),
    Case("same customer, conflicting attributes (dated log)", write("conflict_dated.csv", lambda r: text(
        r.dated("conflict", 3) + [r.dated("conflict", 4, dates={3: "2024-03-01"}, edits={
            3: {"Customer ID": "1", "Age": "33", "Location": "Ohio"}})[4]])),
        Loads(4, check=values("select count(*), count(distinct age), count(distinct state) "
                              "from raw.purchases where batch_id = ? and customer_id = '1'",
                              [(2, 2, 2)]))),
    Case("duplicate purchase ids", write("dup_ids.csv", lambda r: text(
        r.dated("dupids", 4, ids={2: 0, 3: 1}))),
        Loads(2, (Rejected(4, "Purchase ID", "duplicate purchase id (first on line 2)"),
                  Rejected(5, "Purchase ID", "duplicate purchase id (first on line 3)")))),
    Case("repeated lines in a CDNOW log are purchases", write("cdnow_repeat.txt", lambda r: cdnow(
        r, [r.cdnow[0], r.cdnow[0], r.cdnow[1]])), Loads(3)),
    Case("CDNOW bad lines", write("cdnow_bad.txt", b"00001 19970101 1 11.77\n00002 19970112 1\n"
                                  b"00003 19971345 2 20.00\n00004 19970101 x 20.00\n"
                                  b"00005 19970101 1 -3.00\n00006 19970101 1 5.00\n"),
         Loads(2, (Rejected(2, None, "expected 4 whitespace-separated fields, found 3"),
                   Rejected(3, "date", "not a date in the format %Y%m%d"),
                   Rejected(4, "number_of_cds", "not a whole number"),
                   Rejected(5, "dollar_value", "amount must be between 0 and 10,000,000")))),
    Case("CDNOW with header and blank lines, CRLF", write("cdnow_hdr.txt", lambda r: cdnow(
        r, ["", "customer_id date number_of_cds dollar_value", r.cdnow[0], "", r.cdnow[1],
            "   ", r.cdnow[2]], "\r\n")),
        Loads(3, check=values("select source_line from raw.purchases where batch_id = ? "
                              "order by 1", [(3,), (5,), (7,)]))),
    Case("wrong delimiter in the rows", write("wrong_delim.csv", lambda r: text(
        r.lines(3)[:1] + [ln.replace(",", ";") for ln in r.lines(3)[1:]])),
        Loads(0, tuple(Rejected(i, None, MISSING_COLUMNS.format(1)) for i in (2, 3, 4)))),
    Case("semicolon file", write("semi.csv", lambda r: text([ln.replace(",", ";") for ln in r.lines(8)])),
         Loads(8)),
    Case("tab file", write("tab.tsv", lambda r: text([ln.replace(",", "\t") for ln in r.lines(8)])),
         Loads(8)),
    Case("pipe file", write("pipe.txt", lambda r: text([ln.replace(",", "|") for ln in r.lines(8)])),
         Loads(8)),
    Case("quoted delimiter and quotes", write("quoted.csv", lambda r: text(r.lines(3, {
        0: {"Item Purchased": '"Blouse, silk"'}, 1: {"Color": '"say ""grey"""'}}))),
        Loads(3, check=values("select item, color from raw.purchases where batch_id = ? and "
                              "source_line in (2, 3) order by source_line",
                              lambda r: [("Blouse, silk", r.rows[0][8]),
                                         (r.rows[1][3], 'say "grey"')]))),
    Case("quoted newlines shift later lines", write("multiline.csv", quoted_newline_then_bad),
         Loads(4, (Rejected(7, AMOUNT, "not a number"),),
               check=values("select source_line, item from raw.purchases where batch_id = ? "
                            "order by 1", lambda r: [
                                (2, r.rows[0][3]), (3, "Blouse\nin two\nlines"),
                                (6, r.rows[2][3]), (8, r.rows[4][3])]))),
    Case("unterminated quote mid-file", write("unterminated.csv", lambda r: text(
        r.lines(6, {2: {"Size": '"L'}}))), Fails(RUNAWAY_QUOTE, line=4)),
    Case("unterminated quote after quoted line breaks", write("unterminated_ml.csv", lambda r: text(
        r.lines(6, {0: {"Item Purchased": '"two\nlines"'}, 3: {"Size": '"L'}}))),
        Fails(RUNAWAY_QUOTE, line=6)),
    Case("quote then text in one value", write("quote_text.csv", lambda r: text(
        r.lines(3, {1: {"Size": '"L"x'}}))), Loads(2, (Rejected(3, None, "UNQUOTED VALUE…"),))),
    Case("unterminated quote on the last line", write("unterminated_last.csv", lambda r: text(
        r.lines(4, {3: {"Gender": '"Fem'}}), final=False)),
        Loads(3, (Rejected(5, None, "UNQUOTED VALUE…"),))),
    Case("truncated last line", write("truncated.csv", lambda r: text(
        r.lines(5)[:-1] + [",".join(r.rows[4][:3])], final=False)),
        Loads(4, (Rejected(6, None, MISSING_COLUMNS.format(3)),))),
    Case("too many fields", write("too_many.csv", lambda r: text(r.lines(4, {
        1: {"Frequency of Purchases": "Weekly,extra"}}))),
        Loads(3, (Rejected(3, None, "TOO MANY COLUMNS…"),))),
    Case("trailing delimiter is ignored", write("trailing.csv", lambda r: text(
        r.lines(3)[:1] + [ln + "," for ln in r.lines(3)[1:]])), Loads(3)),
    Case("padded values are trimmed", write("padded.csv", lambda r: text(r.lines(2, {
        0: {AMOUNT: "  53  ", "Location": " Kentucky "}}))),
        Loads(2, check=values("select amount::varchar, state from raw.purchases where "
                              "batch_id = ? and source_line = 2", [("53.00", "Kentucky")]))),
    Case("latin-1 text", write("latin1.csv", lambda r: "\n".join(
        r.lines(5, {2: {"Item Purchased": "Jéans"}})).encode("latin-1")),
        Loads(5, check=values("select item from raw.purchases where batch_id = ? and "
                              "source_line = 4", [("Jéans",)]))),
    Case("invalid UTF-8 late in the file", write("bad_bytes.csv", latin1_late),
         Loads(999, (Rejected(1001, None, "INVALID ENCODING…"),))),
    Case("NUL byte in a value", write("nul.csv", lambda r: text(r.lines(4, {2: {"Color": "Gr\x00y"}}))),
         Loads(3, (Rejected(4, "Color", "contains a NUL character"),))),
    Case("UTF-8 with BOM", write("bom_rows.csv", lambda r: codecs.BOM_UTF8 + text(r.lines(4))), Loads(4)),
    Case("UTF-16 LE with BOM", write("u16le.csv", lambda r: utf16(r, "utf-16-le", codecs.BOM_UTF16_LE)),
         Loads(6, check=values("select item from raw.purchases where batch_id = ? and "
                               "source_line = 5", [("Jéans",)]))),
    Case("UTF-16 LE without BOM", write("u16le_nobom.csv", lambda r: utf16(r, "utf-16-le", b"")),
         Loads(6, check=values("select item from raw.purchases where batch_id = ? and "
                               "source_line = 5", [("Jéans",)]))),
    Case("UTF-16 BE with BOM", write("u16be.csv", lambda r: utf16(r, "utf-16-be", codecs.BOM_UTF16_BE)),
         Loads(6, check=values("select item from raw.purchases where batch_id = ? and "
                               "source_line = 5", [("Jéans",)]))),
    Case("UTF-16 BE without BOM", write("u16be_nobom.csv", lambda r: utf16(r, "utf-16-be", b"")),
         Loads(6, check=values("select item from raw.purchases where batch_id = ? and "
                               "source_line = 5", [("Jéans",)]))),
    Case("CRLF line ends", write("crlf.csv", lambda r: text(r.lines(5, {3: {AMOUNT: "x"}}), "\r\n")),
         Loads(4, (Rejected(5, AMOUNT, "not a number"),))),
    Case("CR line ends", write("cr.csv", lambda r: text(r.lines(5, {3: {AMOUNT: "x"}}), "\r")),
         Loads(4, (Rejected(5, AMOUNT, "not a number"),))),
    Case("mixed line ends", write("mixed.csv", mixed_eol),
         Loads(5, (Rejected(6, AMOUNT, "amount must be between 0 and 10,000,000"),),
               notes=("line ends mixed LF, CR LF and CR: read as LF",))),
    Case("blank lines before the header and between rows", write("blanks.csv", with_blank_lines),
         Loads(5, (Rejected(11, "Age", "not a whole number"),),
               check=values("select source_line from raw.purchases where batch_id = ? "
                            "order by 1", [(4,), (5,), (7,), (10,), (12,)]))),
    Case("CR LF inside a value of an LF file, with blank lines", write("crlf_in_lf.csv", lambda r: text(
        [r.lines(0)[0], "", *r.lines(2, {0: {"Item Purchased": '"two\r\nlines"'},
                                         1: {AMOUNT: "x"}})[1:2], "", r.lines(2, {
            1: {AMOUNT: "x"}})[2]])),
        Loads(1, (Rejected(6, AMOUNT, "not a number"),),
              check=values("select source_line, item from raw.purchases where batch_id = ?",
                           [(3, "two\r\nlines")]))),
    Case("extra columns are ignored", write("extra.csv", lambda r: text(
        [r.lines(0)[0] + ",Loyalty Tier"] + [ln + ",Gold" for ln in r.lines(3)[1:]])),
        Loads(3, notes=("ignored column(s): Loyalty Tier",))),
    Case("optional columns missing", write("fewer.csv", lambda r: text(
        [",".join(f for h, f in zip(r.header, ln.split(","), strict=True)
                  if h not in ("Age", "Gender", "Season")) for ln in r.lines(4)])),
        Loads(4, check=values("select count(*) filter (where age is null and gender is null "
                              "and season is null) from raw.purchases where batch_id = ?",
                              [(4,)]))),
    Case("renamed and reordered columns", write("renamed_ok.csv", lambda r: text(
        [",".join(reversed(["customer_id" if h == "Customer ID" else
                            "purchase_amount" if h == AMOUNT else h.lower().replace(" ", "_")
                            for h in r.header]))]
        + [",".join(reversed(ln.split(","))) for ln in r.lines(4)[1:]])),
        Loads(4, check=values("select customer_id, amount::varchar, item from raw.purchases "
                              "where batch_id = ? and source_line = 2",
                              lambda r: [(r.rows[0][0], f"{r.rows[0][5]}.00", r.rows[0][3])]))),
    Case("hostile values load verbatim", write("hostile.csv", hostile),
         Loads(3, check=values("select item, color from raw.purchases where batch_id = ? "
                               "order by source_line",
                               lambda r: [("'; drop table raw.purchases; --", r.rows[0][8]),
                                          ('=HYPERLINK("http://x","y")', r.rows[1][8]),
                                          (r.rows[2][3], "Robert'); DROP TABLE Students;--")]))),
    Case("hostile column name is ignored", write("hostile_header.csv", hostile_header),
         Loads(2, notes=("ignored column(s): x'); drop table raw.batches; --",))),
    Case("1,200 extra columns (past the expression depth limit)", write("wide.csv", wide), Loads(3)),
    Case("gzip, two members", write("two.csv.gz", lambda r: gzip.compress(text(r.lines(3)))
                                    + gzip.compress(text(r.lines(6)[4:]))), Loads(6)),
    Case("Parquet with bad values", parquet_bad_types,
         Loads(1, (Rejected(3, AMOUNT, "not a number"), Rejected(3, "Age", "not a whole number"),
                   Rejected(4, "Customer ID", "missing value"),
                   Rejected(4, "Age", "age must be between 0 and 120")))),
    Case("customer id over 64 characters", write("long_id.csv", lambda r: text(r.lines(2, {
        1: {"Customer ID": "C" * 65}}))),
        Loads(1, (Rejected(3, "Customer ID", "longer than 64 characters"),))),
]



# -- running the corpus ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(kaggle_csv: Path, cdnow_master: Path) -> Real:
    with kaggle_csv.open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    cdnow_lines = cdnow_master.read_text(encoding="ascii").splitlines()[1:]
    return Real(header, rows, cdnow_lines)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """One warehouse and lake for the whole corpus (each case is its own batch)."""
    settings = load_settings(home=tmp_path_factory.mktemp("corpus") / "home")
    con = warehouse.connect(settings)
    yield settings, con, Lake(settings.lake)
    con.close()


def _expected_message(path: Path, fails: Fails) -> tuple[str, bool]:
    where = f"{path}:{fails.line}" if fails.line is not None else str(path)
    if fails.problem.endswith("…"):
        return f"{where}: {fails.problem[:-1]}", True
    return f"{where}: {fails.problem}", False


def _sha(path: Path) -> str | None:
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=c.marks) for c in CASES])
def test_corpus(case: Case, env, real: Real, tmp_path: Path) -> None:
    settings, con, lake = env
    path = case.build(tmp_path, real)
    batches_before = con.execute("select count(*) from raw.batches").fetchone()[0]
    if isinstance(case.expect, Fails):
        expected, prefix = _expected_message(path, case.expect)
        with pytest.raises(InputFileError) as exc:
            for f in (expand_inputs([path]) if case.expand else [path]):
                ingest_file(con, lake, f, run_id="corpus", fmt=case.fmt)
        message = str(exc.value)
        assert "\n" not in message
        assert (message.startswith(expected) if prefix else message == expected), (
            message, expected)
        # nothing loaded; nothing landed, unless the problem shows only when the file is read
        # (then the raw file stays in the lake as received, marked unusable with the reason)
        assert con.execute("select count(*) from raw.batches").fetchone()[0] == batches_before
        sha = _sha(path)
        entry = lake.manifest_entry(sha) if sha else None
        if entry is None:
            assert not sha or not list(Path(settings.lake).glob(f"raw/**/{sha}*"))
        else:
            assert (entry["status"], entry["error"]) == ("unusable", message)
            assert pending_batches(con, lake) == []
        return

    expect = case.expect
    res = ingest_file(con, lake, path, run_id="corpus", fmt=case.fmt)
    lines = {r.line for r in expect.rejects}
    assert (res.rows_in, res.rows_loaded, res.rows_rejected) == (
        expect.loaded + len(lines), expect.loaded, len(lines))
    # the counts are what the tables hold
    n_loaded, n_rejected = con.execute(
        "select (select count(*) from raw.purchases where batch_id = $b), "
        "(select count(distinct line) from raw.rejects where batch_id = $b)",
        {"b": res.batch_id}).fetchone()
    assert (n_loaded, n_rejected) == (res.rows_loaded, res.rows_rejected)
    got = con.execute("select line, column_name, reason from raw.rejects where batch_id = ? "
                      "order by line, column_name", [res.batch_id]).fetchall()
    want = sorted(expect.rejects, key=lambda r: (r.line, r.column or ""))
    assert len(got) == len(want), got
    for (line, column, reason), w in zip(got, want, strict=True):
        assert line == w.line, got
        if w.column is not None:
            assert column == w.column, got
        if w.reason.endswith("…"):
            assert reason.startswith(w.reason[:-1]), got
        else:
            assert reason == w.reason, got
    # every reject keeps the row's raw text and the file it came from
    assert con.execute("select count(*) from raw.rejects where batch_id = ? and "
                       "(raw_text is null or source_file <> ?)",
                       [res.batch_id, path.name]).fetchone()[0] == 0
    for note in expect.notes:
        assert note in res.notes
    if expect.check:
        expect.check(con, res.batch_id, real)


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


# -- the same through the real CLI -------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURCHASE_PATTERNS_")}
    return subprocess.run([sys.executable, "-m", "purchase_patterns", *args],
                          capture_output=True, text=True, env=env, timeout=300)


CLI_CASES = ["binary garbage", "gzip cut short", "line over 2 MB", "a FIFO, not a file",
             "duplicated column", "path does not exist"]


@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory, real: Real) -> list[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("cli-corpus")
    by_name = {c.name: c for c in CASES}
    out = []
    for name in CLI_CASES:
        case = by_name[name]
        assert isinstance(case.expect, Fails)
        path = case.build(folder, real)
        out.append((path, _expected_message(path, case.expect)[0]))
    return out


def test_cli_unusable_inputs_one_line_each_exit_2(cli_inputs, tmp_path: Path) -> None:
    """All the unusable files in one run: one error line per file, each naming it, no
    traceback, exit 2, nothing loaded; --json reports the same per file."""
    home = tmp_path / "home"
    args = [a for path, _ in cli_inputs for a in ("--input", str(path))]
    res = cli("--home", str(home), "run", *args)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == len(cli_inputs)
    for (_path, message), line in zip(cli_inputs, errors, strict=True):
        assert line == f"error: {message}" or line.startswith(f"error: {message}")
    as_json = cli("--home", str(home), "--json", "run", *args)
    assert as_json.returncode == 2
    summary = json.loads(as_json.stdout)
    assert [i["error"] for i in summary["inputs"]] == summary["errors"]
    assert all(i["rows_in"] == i["rows_loaded"] + i["rows_rejected"] == 0
               for i in summary["inputs"])
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from raw.batches").fetchone()[0] == 0
        assert con.execute("select status from meta.runs").fetchall() == [
            ("failed_input",), ("failed_input",)]
    finally:
        con.close()


def test_cli_debug_shows_the_traceback(cli_inputs, tmp_path: Path) -> None:
    path, message = cli_inputs[0]
    res = cli("--home", str(tmp_path / "home"), "--debug", "ingest", "--input", str(path))
    assert res.returncode == 2
    assert "Traceback (most recent call last)" in res.stderr
    assert f"error: {message}" in res.stderr


def test_cli_quarantines_rows_and_reports_them(real: Real, tmp_path: Path) -> None:
    """A file with bad rows loads the good ones (exit 0 under the reject-rate limit) and the
    summary names the rejects."""
    path = tmp_path / "some_bad.csv"
    path.write_bytes(text(real.lines(10, {2: {"Age": "200"}, 6: {AMOUNT: "-1"}})))
    res = cli("--home", str(tmp_path / "home"), "--json", "ingest", "--input", str(path))
    assert res.returncode == 0, res.stderr
    [inp] = json.loads(res.stdout)["inputs"]
    assert (inp["rows_in"], inp["rows_loaded"], inp["rows_rejected"]) == (10, 8, 2)
    assert sorted((r["column"], r["reason"]) for r in inp["top_rejects"]) == [
        ("Age", "age must be between 0 and 120"),
        (AMOUNT, "amount must be between 0 and 10,000,000")]


def test_overlapping_reexport_adds_only_new_purchases(real: Real, tmp_path: Path) -> None:
    """The usual cause of duplicates after a retried load: the same purchases exported again
    in a different file (other bytes, so another batch). Purchases whose id is already
    loaded are rejected, naming the batch and line they were loaded from; the rest load."""
    settings = load_settings(home=tmp_path / "home")
    first = tmp_path / "orders_jan.csv"
    first.write_bytes(text(real.dated("order", 5)))
    lines = real.dated("order", 8)
    second = tmp_path / "orders_jan_feb.csv"
    second.write_bytes(text([lines[0], *lines[4:]]))  # order-3 .. order-7
    con = warehouse.connect(settings)
    try:
        lake = Lake(settings.lake)
        a = ingest_file(con, lake, first, run_id="r1")
        b = ingest_file(con, lake, second, run_id="r2")
        assert (a.rows_loaded, a.rows_rejected) == (5, 0)
        assert (b.rows_in, b.rows_loaded, b.rows_rejected) == (5, 3, 2)
        rejects = con.execute("select line, column_name, reason from raw.rejects "
                              "where batch_id = ? order by line", [b.batch_id]).fetchall()
        assert rejects == [
            (2, "Purchase ID", f"purchase id already loaded (batch {a.batch_id[:12]}, line 5)"),
            (3, "Purchase ID", f"purchase id already loaded (batch {a.batch_id[:12]}, line 6)")]
        assert con.execute("select count(*), count(distinct purchase_id) from raw.purchases"
                           ).fetchone() == (8, 8)
    finally:
        con.close()

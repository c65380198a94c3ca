"""The ingest contract: read a source file with DuckDB and check every row, in SQL.

Everything happens in one DuckDB connection over temporary tables, so a 10M-row file streams
through DuckDB's vectorised CSV reader and is never held in Python:

1. ``_src``: the raw fields as text with the exact 1-based line each record starts on;
   structural problems (wrong number of fields, unterminated quotes, invalid encoding) are
   caught by DuckDB's ``store_rejects`` with their line and raw text.
2. ``_checked``: every canonical field parsed and typed, plus ``_errors``, the list of
   ``(column, reason)`` the row breaks.

``load.py`` then moves valid rows to ``raw.purchases`` and the rest to ``raw.rejects``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .errors import InputFileError, StageError, one_line
from .schema import FREQUENCY_PER_YEAR, SEASONS, US_STATES
from .sources import SourceSpec, normalised_copy

_counter = itertools.count()


def q(name: str) -> str:
    """Quote an identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote a string literal (only for values produced by this package, never user data)."""
    return "'" + value.replace("'", "''") + "'"


@dataclass
class ReadResult:
    records: int  # records DuckDB parsed into _src (good structure)
    structural_rejects: int  # records rejected by the CSV reader
    raw_columns: list[str]  # column names in _src (positional c1..cn → user labels)
    labels: dict[str, str]  # _src column → column name as the user sees it
    #: SQL over ``_src`` giving the record's raw text (used for rejects only)
    raw_sql: str = "_raw"
    #: True when ``_src`` carries the physical ``_line`` of each record; otherwise records come
    #: in file order and ``_checked`` (filled in that order) numbers them by row id.
    has_line: bool = False
    #: a quoted field holds a line break, so a record may span several lines
    multiline: bool = False
    #: line number of the first record after the header (blank lines before it are skipped)
    first_line: int = 2
    #: blank lines among the records (listed in temp table ``_blank``; the reader skips them)
    blank_lines: int = 0


#: The CSV reader's limit on one line (a record). Longer lines are refused before reading,
#: at landing (see ``ingest.scan_file``): DuckDB drops a line longer than its buffer (16
#: times this) without a report. The reader holds a buffer of 16 times this per thread.
MAX_LINE_BYTES = 2_000_000


class LineEndsError(Exception):
    """The file mixes line-end styles (LF, CR LF, CR), which the strict CSV reader refuses;
    reading a normalised copy (``sources.normalised_copy``) works."""


# --------------------------------------------------------------------------------------------
# step 1: read


def read_source(con: duckdb.DuckDBPyConnection, spec: SourceSpec, *,
                blank_lines: bool = True, scratch: Path | None = None) -> ReadResult:
    """Create temp tables ``_src`` and ``_structural`` for ``spec``.

    ``blank_lines`` False says the file holds no blank line between records (``ingest``
    knows from scanning it at landing), which saves a pass over the file that finds them for
    exact line numbers. ``scratch`` is a private folder for a copy of the file with LF line
    ends, which that pass reads when values hold line breaks (DuckDB's line reader splits a
    CR LF inside a value of an LF file in two); without it the pass reads the file itself.
    Raises :class:`LineEndsError` for mixed line ends (delimited text).
    """
    cleanup(con)
    con.execute(
        "create temp table _structural (line bigint, column_name varchar, reason varchar, "
        "raw_text varchar)"
    )
    if spec.format == "parquet":
        return _read_parquet(con, spec)
    if spec.delimiter is None:
        return _read_whitespace(con, spec)
    return _read_delimited(con, spec, str(spec.path), blank_lines=blank_lines,
                           scratch=scratch)


def _csv_common(spec: SourceSpec) -> str:
    sn = spec.sniff
    opts = [
        f"encoding={lit(sn.encoding)}",
        "auto_detect=false",
        "all_varchar=true",
        f"compression={lit('gzip' if sn.compression == 'gzip' else 'none')}",
        f"max_line_size={MAX_LINE_BYTES}",
    ]
    return ", ".join(opts)


def _lines_reader(spec: SourceSpec) -> str:
    """``read_csv`` over the file's physical lines, numbered from 1 (``ordinality``), column
    ``l`` NULL for an empty line (one column, so empty lines are rows, not skipped). U+0001
    serves as the unused delimiter: landing refuses whitespace logs that hold one (see
    ``ingest.scan_file``). The path is the query's one parameter."""
    return (
        "read_csv(?, columns={'l': 'VARCHAR'}, delim='\x01', quote='', escape='', "
        f"header=false, strict_mode=false, {_csv_common(spec)}) with ordinality"
    )


def _breaks(expr: str) -> str:
    """SQL: how many line breaks (LF, CR LF or a lone CR) the text ``expr`` holds."""
    norm = f"replace(replace({expr}, chr(13) || chr(10), chr(10)), chr(13), chr(10))"
    return f"(length({norm}) - length(replace({norm}, chr(10), '')))"


def _read_whitespace(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> ReadResult:
    """Whitespace-separated logs (CDNOW): one record per physical line, no quoting."""
    n = len(spec.raw_columns)
    cols = ", ".join(
        f"t[{i + 1}] as c{i + 1}" for i in range(n)
    )
    skip = spec.sniff.header_line if spec.header else 0
    try:
        con.execute(
            f"""
            create temp table _lines as
            select ordinality as _line, l as _raw,
                   string_split_regex(regexp_replace(l, '^\\s+|\\s+$', '', 'g'), '\\s+') as t
            from {_lines_reader(spec)}
            where ordinality > {skip} and regexp_replace(coalesce(l, ''), '\\s', '', 'g') <> ''
            """,  # noqa: S608 - only package-built option text is interpolated
            [str(spec.path)],
        )
    except duckdb.Error as exc:
        raise InputFileError(spec.path, f"cannot be read as text lines ({_first_line(exc)})") from None
    con.execute(
        f"""
        insert into _structural
        select _line, null,
               'expected {n} whitespace-separated fields, found ' || len(t), _raw
        from _lines where len(t) <> {n}
        """  # noqa: S608
    )
    con.execute(
        f"create temp table _src as select _line, _raw, {cols} "  # noqa: S608
        f"from _lines where len(t) = {n}"
    )
    con.execute("drop table _lines")
    labels = {f"c{i + 1}": name for i, name in enumerate(spec.raw_columns)}
    return _result(con, list(labels), labels, "_raw", has_line=True)


def _read_delimited(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: str, *,
                    blank_lines: bool, scratch: Path | None) -> ReadResult:
    """Pass 1 scans the file once for structural rejects, record count and embedded line
    breaks. ``_src`` is then a view over the file, so the check pass streams from the CSV
    reader without materialising raw text. Expressions over every column are single calls
    (``concat``), never chains, so a file with thousands of columns stays within DuckDB's
    expression depth."""
    n = len(spec.raw_columns)
    names = [f"c{i + 1}" for i in range(n)]
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in names) + "}"
    k = next(_counter)
    rej, rej_scan = f"_rej_{k}", f"_rejscan_{k}"
    header_line = spec.sniff.header_line
    opts = (
        f"columns={columns}, header=true, skip={header_line - 1}, "
        f"delim={lit(spec.delimiter or ',')}, quote='\"', escape='\"', strict_mode=true, "
        f"null_padding=false, {_csv_common(spec)}"
    )
    every_field = "concat(" + ", ".join(names) + ")"
    try:
        records, multiline = con.execute(
            f"select count(*), count(*) filter (where {_breaks(every_field)} > 0) "  # noqa: S608
            f"from read_csv(?, {opts}, store_rejects=true, rejects_table={lit(rej)}, "
            f"rejects_scan={lit(rej_scan)})",
            [path],
        ).fetchall()[0]  # consume the whole result: the rejects table is written at its end
    except duckdb.OutOfMemoryException as exc:
        raise StageError(f"{one_line(str(spec.path))}: not enough memory to read it "
                         f"({_first_line(exc)}); raise the duckdb_memory_limit setting") from None
    except duckdb.Error as exc:
        if "state machine reached an invalid state" in str(exc):
            raise LineEndsError(path) from None
        raise InputFileError(spec.path, f"cannot be parsed as delimited text ({_first_line(exc)})") from None
    # Every reject record with its start line and raw text (first error per record). DuckDB's
    # raw text of a CR LF file starts with the LF that ended the line before: trimmed.
    # (DuckDB creates the rejects table only when it has something to put in it.)
    if con.execute("select count(*) from duckdb_tables() where table_name = ?", [rej]).fetchone()[0]:
        con.execute(
            f"""
            insert into _structural
            select line, column_name, error_type || ': ' || error_message,
                   trim(csv_line, chr(13) || chr(10))
            from {rej}
            qualify row_number() over (partition by line order by byte_position) = 1
            """  # noqa: S608
        )
    con.execute(f"drop table if exists {rej}")
    con.execute(f"drop table if exists {rej_scan}")
    # A view cannot hold a bound parameter: the path goes in as a quoted literal. The good
    # records come in file order, so a record's position among them is its row number in the
    # table ``check`` fills from this view (``with ordinality`` would say the same, but runs
    # the whole check pass in one thread). The reader runs as in pass 1 (storing rejects
    # again, in tables that ``cleanup`` drops: with ignore_errors instead, DuckDB also skips
    # the good record after some bad ones), and the filter (always true) makes it decode
    # every column, as pass 1 did, so exactly the same records are skipped as were reported.
    con.execute(
        f"create or replace temp view _src as select {', '.join(names)} "  # noqa: S608
        f"from read_csv({lit(path)}, {opts}, store_rejects=true, "
        f"rejects_table={lit(f'_srcrej_{k}')}, rejects_scan={lit(f'_srcrejscan_{k}')}) "
        f"where length({every_field}) >= 0"
    )
    labels = dict(zip(names, spec.raw_columns, strict=True))
    _relabel(con, "_structural", "column_name", labels)
    raw_sql = ("concat_ws(" + lit(spec.delimiter or ",") + ", "
               + ", ".join(f"coalesce({c}, '')" for c in names) + ")")
    structural, broken, runaway = con.execute(
        f"select count(*), count(*) filter (where {_breaks('raw_text')} > 0), "  # noqa: S608
        f"min(line) filter (where reason like 'UNQUOTED VALUE%' and {_breaks('raw_text')} > 0) "
        "from _structural"
    ).fetchone()
    if runaway is not None:
        # the line DuckDB reports does not count quoted line breaks: the physical line
        lines = _lf_copy(spec, scratch)
        line = con.execute(f"{_numbered_lines(lines)} select min(p) from numbered "  # noqa: S608
                           "where outside and u = ?", [str(lines.path), runaway]).fetchone()[0]
        raise InputFileError(spec.path, "a quoted value starts on this line and never ends "
                             "(unterminated quote): the rest of the file would be one value",
                             line=line)
    multiline = bool(multiline or broken)
    if blank_lines:
        lines = _lf_copy(spec, scratch) if multiline else spec
        blanks = _blank_lines(con, lines, str(lines.path), multiline)
    else:
        blanks = 0
    return ReadResult(records, structural, names, labels, raw_sql, False, multiline,
                      header_line + 1, blanks)


def _lf_copy(spec: SourceSpec, scratch: Path | None) -> SourceSpec:
    """The file with LF line ends (same lines), for the line reader; the file itself when
    there is no scratch folder."""
    return normalised_copy(spec, scratch, line_ends=True) if scratch else spec


def _blank_lines(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: str,
                 multiline: bool) -> int:
    """Temp table ``_blank(line, p)``: the blank lines after the header, which the CSV reader
    skips, numbered as the reader numbers lines (quoted line breaks not counted) and
    physically. Returns how many there are.

    A physical empty line inside a quoted value is not a blank line: when values hold line
    breaks, a line is inside quotes when an odd number of quote characters precede it
    (``""`` escapes count twice, so RFC 4180 text is measured exactly)."""
    if not multiline:
        con.execute(
            f"create or replace temp table _blank as select ordinality as line, "  # noqa: S608
            f"ordinality as p from {_lines_reader(spec)} "
            f"where l is null and ordinality > {spec.sniff.header_line}",
            [path],
        )
    else:
        con.execute(
            f"create or replace temp table _blank as {_numbered_lines(spec)} "  # noqa: S608
            f"select u as line, p from numbered "
            f"where empty and outside and p > {spec.sniff.header_line}",
            [path],
        )
    return con.execute("select count(*) from _blank").fetchone()[0]


def _numbered_lines(spec: SourceSpec) -> str:
    """A ``with`` clause defining ``numbered(p, empty, outside, u)``: every physical line
    ``p``, whether it is empty, whether it starts outside quoted text (an even number of
    quote characters before it), and ``u``, its number as the CSV reader counts lines (line
    breaks inside quoted values not counted). The file path is the one parameter."""
    quotes = "coalesce(length(l) - length(replace(l, '\"', '')), 0)"
    return f"""
        with phys as (
            select ordinality as p, l is null as empty, {quotes} as nq
            from {_lines_reader(spec)}
        ), state as (
            select p, empty, coalesce(sum(nq) over (
                order by p rows between unbounded preceding and 1 preceding), 0) % 2 = 0
                as outside
            from phys
        ), numbered as (
            select p, empty, outside,
                   sum(outside::int) over (order by p rows unbounded preceding) as u
            from state
        )
    """  # noqa: S608


def _number_lines(con: duckdb.DuckDBPyConnection, read: ReadResult) -> None:
    """Give ``_checked`` (created in file order) a ``_line`` column: the physical line each
    record starts on; and turn the line numbers DuckDB reports for rejects into physical lines.

    DuckDB numbers lines without counting line breaks inside quoted values (call that number
    ``u``; blank lines and the lines skipped before the header do count) and reports rejects
    by it. Good records fill, in order, the ``u`` slots from ``first_line`` on that rejects
    and blank lines leave free: with the obstacles sorted, obstacle ``j`` at ``u_j`` has
    ``t_j = u_j - first_line - (j - 1)`` good records before it, so good record ``k``
    (0-based position: its row id) sits at ``first_line + k + #{j : t_j <= k}``. When values hold line
    breaks, a record's physical line is its ``u`` plus the breaks inside the records before it.
    """
    base = read.first_line
    con.execute("alter table _checked add column _line bigint")
    con.execute("update _checked set _line = rowid + ?", [base])
    if read.structural_rejects or read.blank_lines:
        blank = "union all select line from _blank" if read.blank_lines else ""
        con.execute(
            f"""
            create or replace temp table _shift as
            with obstacles as (select line from _structural {blank}),
            pos as (  -- t + 1, to compare with the 1-based position rowid + 1
                select line - ? - row_number() over (order by line) + 2 as t
                from obstacles
            )
            select t, max(n) as n from (
                select t, count(*) over (order by t rows unbounded preceding) as n from pos
            ) group by t  -- adjacent obstacles share a t: the last count holds for it
            """,  # noqa: S608
            [base],
        )
        con.execute(
            """
            update _checked set _line = _line + s.n
            from (select c.rowid as rid, sh.n
                  from _checked as c asof join _shift as sh on c.rowid + 1 >= sh.t) as s
            where _checked.rowid = s.rid
            """
        )
        con.execute("drop table _shift")
    if not read.multiline:
        return
    con.execute(
        f"""
        create temp table _extra as
        with x as (
            select _line as u, _span - 1 as extra from _checked where _span > 1
            union all
            select line, {_breaks('raw_text')} from _structural where {_breaks('raw_text')} > 0
        )
        select u, sum(extra) over (order by u rows unbounded preceding) as cum from x
        """  # noqa: S608
    )
    for table, col in (("_checked", "_line"), ("_structural", "line")):
        con.execute(
            f"""
            update {table} set {col} = {col} + e.cum
            from (select t.rowid as rid, x.cum
                  from {table} as t asof join _extra as x on t.{col} > x.u) as e
            where {table}.rowid = e.rid
            """  # noqa: S608
        )
    con.execute("drop table _extra")


def _read_parquet(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> ReadResult:
    names = [f"c{i + 1}" for i in range(len(spec.raw_columns))]
    sel = ", ".join(
        f"cast({q(src)} as varchar) as {c}" for c, src in zip(names, spec.raw_columns, strict=True)
    )
    try:
        con.execute(
            f"create temp table _src as select {sel} from read_parquet(?)",  # noqa: S608
            [str(spec.path)],
        )
    except duckdb.Error as exc:
        raise InputFileError(spec.path, f"unreadable Parquet file ({_first_line(exc)})") from None
    labels = dict(zip(names, spec.raw_columns, strict=True))
    raw_sql = "concat_ws(',', " + ", ".join(f"coalesce({c}, '')" for c in names) + ")"
    # Parquet has no lines: a record's "line" is its 1-based row number plus one, as if the
    # file had a header line, so that numbering matches a CSV export of the same data.
    return _result(con, names, labels, raw_sql)


def _relabel(con: duckdb.DuckDBPyConnection, table: str, column: str,
             labels: dict[str, str]) -> None:
    """Replace internal column names in ``table.column`` with the names the user sees.
    User-supplied header text only ever travels as a bound parameter."""
    con.execute("create or replace temp table _labels (name varchar, label varchar)")
    con.executemany("insert into _labels values (?, ?)", list(labels.items()))
    con.execute(
        f"update {table} set {column} = l.label from _labels as l "  # noqa: S608
        f"where l.name = {table}.{column}"
    )
    con.execute("drop table _labels")


def _result(con: duckdb.DuckDBPyConnection, names: list[str], labels: dict[str, str],
            raw_sql: str, *, has_line: bool = False, multiline: bool = False) -> ReadResult:
    records = con.execute("select count(*) from _src").fetchone()[0]
    structural = con.execute("select count(*) from _structural").fetchone()[0]
    return ReadResult(records, structural, names, labels, raw_sql, has_line, multiline)


def cleanup(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary objects of one read."""
    names = ["_src", "_structural", "_checked", "_blank"]
    for (view,) in con.execute(
        "select view_name from duckdb_views() where temporary and list_contains(?, view_name)",
        [names],
    ).fetchall():
        con.execute(f"drop view {view}")
    for (table,) in con.execute(
        "select table_name from duckdb_tables() where temporary and "
        "(list_contains(?, table_name) or table_name like '\\_srcrej%' escape '\\')",
        [names],
    ).fetchall():
        con.execute(f"drop table {table}")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300]


# --------------------------------------------------------------------------------------------
# step 2: check


def _state_map() -> str:
    """A constant MAP: lower-case state name or USPS code → state name (order-preserving and
    vectorised, unlike a join)."""
    pairs = [(n.lower(), n) for n in US_STATES] + [
        (code.lower(), n) for n, (code, *_r) in US_STATES.items()
    ]
    return "MAP {" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in pairs) + "}"


#: Yes/No text → BOOLEAN (a CASE, not ``IN (...)``: DuckDB plans IN lists as joins)
_YES_NO = ("case lower(v) " + " ".join(
    f"when '{w}' then {b}" for b, words in (("true", "yes y true t 1"), ("false", "no n false f 0"))
    for w in words.split()) + " end")
_FREQ_CANON = {k.lower().replace("-", "").replace(" ", ""): k for k in FREQUENCY_PER_YEAR}
_SEASON_CANON = {s.lower(): s for s in SEASONS} | {"autumn": "Fall"}
_GENDER_CANON = {
    "male": "Male", "m": "Male", "female": "Female", "f": "Female",
    "non-binary": "Non-binary", "nonbinary": "Non-binary", "other": "Other",
    "unknown": "Unknown", "u": "Unknown",
}


def _map_case(expr: str, mapping: dict[str, str]) -> str:
    whens = " ".join(f"when {lit(k)} then {lit(v)}" for k, v in mapping.items())
    return f"case {expr} {whens} end"


@dataclass(frozen=True)
class FieldRule:
    """How to type one canonical field: ``parse`` maps text ``v`` to the typed value (NULL when
    it cannot), ``check`` is a condition on the typed value ``x`` that must hold."""

    parse: str
    check: str | None = None
    bad_parse: str = "invalid value"
    bad_check: str = "out of range"


#: A whole number (``35`` or ``35.0``; a cast to INTEGER would round ``1.5`` to 2 unseen).
_WHOLE = (
    "case when try_cast(v as double) = floor(try_cast(v as double)) "
    "and abs(try_cast(v as double)) < 1e9 then cast(try_cast(v as double) as integer) end"
)


def _rules(spec: SourceSpec) -> dict[str, FieldRule]:
    fmt = spec.date_format
    return {
        "customer_id": FieldRule("v", "length(x) <= 64", bad_check="longer than 64 characters"),
        "purchase_id": FieldRule("v", "length(x) <= 128", bad_check="longer than 128 characters"),
        "purchase_date": FieldRule(
            f"cast(try_strptime(v, {lit(fmt)}) as date)",
            "x between date '1970-01-01' and current_date + 1",
            bad_parse=f"not a date in the format {fmt}",
            bad_check="date out of range (before 1970 or in the future)",
        ),
        "season": FieldRule(_map_case("lower(v)", _SEASON_CANON),
                            bad_parse="unknown season (expected Winter, Spring, Summer or Fall)"),
        "item": FieldRule("v", "length(x) <= 200", bad_check="longer than 200 characters"),
        "category": FieldRule("v", "length(x) <= 200", bad_check="longer than 200 characters"),
        "amount": FieldRule(
            "try_cast(replace(regexp_replace(v, '^\\$\\s*', ''), ',', '') as decimal(18,2))",
            "x >= 0 and x < 10000000",
            bad_parse="not a number",
            bad_check="amount must be between 0 and 10,000,000",
        ),
        "quantity": FieldRule(
            _WHOLE, "x between 1 and 100000",
            bad_parse="not a whole number", bad_check="quantity must be between 1 and 100,000",
        ),
        "size": FieldRule("v", "length(x) <= 20", bad_check="longer than 20 characters"),
        "color": FieldRule("v", "length(x) <= 50", bad_check="longer than 50 characters"),
        "review_rating": FieldRule(
            "try_cast(v as double)", "x between 1 and 5",
            bad_parse="not a number", bad_check="rating must be between 1 and 5",
        ),
        "payment_method": FieldRule("v", "length(x) <= 50", bad_check="longer than 50 characters"),
        "shipping_type": FieldRule("v", "length(x) <= 50", bad_check="longer than 50 characters"),
        "discount_applied": FieldRule(
            _YES_NO,
            bad_parse="expected Yes or No",
        ),
        "promo_code_used": FieldRule(
            _YES_NO,
            bad_parse="expected Yes or No",
        ),
        "age": FieldRule(
            _WHOLE, "x between 0 and 120",
            bad_parse="not a whole number", bad_check="age must be between 0 and 120",
        ),
        "gender": FieldRule(_map_case("lower(v)", _GENDER_CANON),
                            bad_parse="unknown gender (expected Male, Female, Non-binary, Other)"),
        "state": FieldRule(f"{_state_map()}[lower(v)]",
                           bad_parse="not a US state (full name or two-letter code)"),
        "subscription_status": FieldRule(
            _YES_NO,
            bad_parse="expected Yes or No",
        ),
        "previous_purchases": FieldRule(
            _WHOLE, "x between 0 and 100000",
            bad_parse="not a whole number",
            bad_check="previous purchases must be between 0 and 100,000",
        ),
        "preferred_payment_method": FieldRule("v", "length(x) <= 50",
                                              bad_check="longer than 50 characters"),
        "purchase_frequency": FieldRule(
            _map_case("replace(replace(lower(v), '-', ''), ' ', '')", _FREQ_CANON),
            bad_parse="unknown purchase frequency (expected Weekly, Fortnightly, Bi-Weekly, "
            "Monthly, Quarterly, Every 3 Months or Annually)",
        ),
    }


REQUIRED = ("customer_id", "amount")


def check(con: duckdb.DuckDBPyConnection, spec: SourceSpec, read: ReadResult) -> None:
    """Create temp table ``_checked``: typed canonical columns plus ``_errors``."""
    select = check_select(spec, read)
    con.execute("drop table if exists _checked")
    _keeps_order(con, select)
    con.execute(f"create temp table _checked as {select}")
    checked = con.execute("select count(*) from _checked").fetchone()[0]
    if checked != read.records:
        raise RuntimeError(
            f"{spec.path}: read {read.records} records in the first pass but {checked} in the "
            "second (did the file change while it was read?)"
        )
    if not read.has_line:
        _number_lines(con, read)
    if spec.one_row_per_customer:
        _flag_repeats(con, "customer_id",
                      "duplicate customer id in a one-row-per-customer file")
    if "purchase_id" in spec.fields:
        _flag_repeats(con, "purchase_id", "duplicate purchase id")


def check_select(spec: SourceSpec, read: ReadResult) -> str:
    """The check pass's query over ``_src``: every canonical field trimmed and typed, the
    list ``_errors`` of ``(column, reason)`` each record breaks, and the raw text where it is
    needed."""
    raw_of = {v: k for k, v in read.labels.items()}  # user label → _src column
    rules = _rules(spec)
    text_cols: list[str] = []
    typed_cols: list[str] = []
    errors: list[str] = []
    for field, rule in rules.items():
        label = spec.fields.get(field)
        if label is None:
            continue
        src = raw_of[label]
        text_cols.append(f"nullif(trim({src}), '') as {q('t_' + field)}")
        v = q("t_" + field)
        typed = q(field)
        typed_cols.append(f"{_subst(rule.parse, 'v', v)} as {typed}")
        col = lit(field)  # canonical name; relabelled to the user's header by ``relabel_errors``
        if field in REQUIRED or field in ("purchase_date", "purchase_id"):
            errors.append(f"case when {v} is null then struct_pack(c := {col}, r := 'missing value') end")
        errors.append(  # the reader keeps NUL bytes in values; no warehouse should get them
            f"case when contains({v}, chr(0)) then "
            f"struct_pack(c := {col}, r := 'contains a NUL character') end"
        )
        errors.append(
            f"case when {v} is not null and {typed} is null then "
            f"struct_pack(c := {col}, r := {lit(rule.bad_parse)}) end"
        )
        if rule.check:
            cond = _subst(rule.check, "x", typed)
            errors.append(
                f"case when {typed} is not null and not ({cond}) then "
                f"struct_pack(c := {col}, r := {lit(rule.bad_check)}) end"
            )
    err_list = f"list_filter([{', '.join(errors)}], lambda e: e is not null)"
    # raw text is kept for rejected rows only (all rows of a snapshot file or of a file with
    # purchase ids, whose duplicate checks run after this pass)
    repeats_checked = spec.one_row_per_customer or "purchase_id" in spec.fields
    raw_cond = "true" if repeats_checked else "len(_errors) > 0"
    extra = "_line, " if read.has_line else ""
    if read.multiline:
        every_field = "concat(" + ", ".join(read.raw_columns) + ")"
        extra += f"1 + {_breaks(every_field)} as _span, "
    return f"""
        with t as (
            select *, {", ".join(text_cols)} from _src
        ), p as (
            select *, {", ".join(typed_cols)} from t
        ), e as (
            select *, {err_list} as _errors from p
        )
        select {extra}{", ".join(q(f) for f in rules if f in spec.fields)}, _errors,
               case when {raw_cond} then {read.raw_sql} end as _raw_text
        from e
        """  # noqa: S608


def _keeps_order(con: duckdb.DuckDBPyConnection, select: str) -> None:
    """Records are numbered by the order ``_checked`` is filled in: with
    ``preserve_insertion_order`` DuckDB guarantees the order of one table's rows through
    SELECT, WHERE and CTEs made of them (its "order preservation" page), also when it reads
    in parallel; a join does not keep it, and DuckDB plans some expressions as joins (a long
    IN list). The rules are this package's own SQL, so a join here is a bug: stop rather than
    misnumber lines."""
    if not con.execute("select current_setting('preserve_insertion_order')").fetchone()[0]:
        raise RuntimeError("the check pass needs DuckDB's preserve_insertion_order setting")
    plan = "\n".join(str(row[-1]) for row in con.execute(f"explain {select}").fetchall())
    if "JOIN" in plan.upper():
        raise RuntimeError("the check pass would not keep the file's order (its plan has a "
                           "join), so line numbers would be wrong")


def _flag_repeats(con: duckdb.DuckDBPyConnection, field: str, reason: str) -> None:
    """Reject every row of ``_checked`` whose ``field`` value appeared on an earlier line
    (the first one is kept), naming that line."""
    con.execute(
        f"""
        update _checked set _errors = list_append(_errors, struct_pack(
            c := {lit(field)}, r := {lit(reason + " (first on line ")} || d.first_line || ')'))
        from (select rowid as rid, _line,
                     min(_line) over (partition by {q(field)}) as first_line
              from _checked where {q(field)} is not null) as d
        where _checked.rowid = d.rid and d._line <> d.first_line
        """  # noqa: S608
    )


def account_lines(con: duckdb.DuckDBPyConnection, spec: SourceSpec, read: ReadResult,
                  text_lines: int | None) -> None:
    """Check, after :func:`check`, that the records and rejects cover every line of the file:
    the header, each record's lines, each reject's lines and the blank lines must add up to
    ``text_lines``, the last line holding text as counted when the file was landed. DuckDB's
    CSV reader can lose lines without a report (an unterminated quote in a file larger than
    one read buffer: part of the rest of the file vanishes into the reject, whose text is cut
    at 10,000 characters); a file whose lines do not add up stops here, naming the first line
    that is not accounted for, instead of loading with rows missing. (An unterminated quote
    the reader does report stops the file in :func:`read_source`.)"""
    if read.has_line or spec.format == "parquet" or text_lines is None:
        return  # one record per physical line (numbered by the line reader), or no count
    span = "_span" if read.multiline else "1"
    covered = con.execute(
        f"""
        select (select coalesce(sum({span}), 0) from _checked)
             + (select coalesce(sum(1 + {_breaks('raw_text')}), 0) from _structural)
        """  # noqa: S608
    ).fetchone()[0]
    blanks = con.execute("select count(*) from _blank where p < ?",  # not the trailing ones
                         [text_lines]).fetchone()[0] if read.blank_lines else 0
    expected = text_lines - spec.sniff.header_line - blanks
    if covered != expected:
        # where the reader went wrong: the first reject for a stray quote, else the first line
        # no record or reject covers
        line = con.execute(
            f"""
            with items as (
                select _line as first, _line + {span} - 1 as last from _checked
                union all
                select line, line + {_breaks('raw_text')} from _structural
                {"union all select line, line from _blank" if read.blank_lines else ""}
            ), ordered as (
                select first, lag(last) over (order by first) as prev from items
            )
            select coalesce(
                (select min(line) from _structural where reason like 'UNQUOTED VALUE%'),
                (select min(coalesce(prev, {spec.sniff.header_line}) + 1) from ordered
                 where first > coalesce(prev, {spec.sniff.header_line}) + 1))
            """  # noqa: S608
        ).fetchone()[0]
        raise InputFileError(
            spec.path, f"{abs(expected - covered)} line(s) could not be read as records, from "
            "about this line on (an unterminated quote?)", line=line)


def relabel_rejects(con: duckdb.DuckDBPyConnection, batch_id: str,
                    labels: dict[str, str]) -> None:
    """Name rejected columns as the user's file does (row checks report canonical names)."""
    con.execute("create or replace temp table _labels (name varchar, label varchar)")
    con.executemany("insert into _labels values (?, ?)", list(labels.items()))
    con.execute(
        "update raw.rejects set column_name = l.label from _labels as l "
        "where raw.rejects.batch_id = ? and l.name = raw.rejects.column_name",
        [batch_id],
    )
    con.execute("drop table _labels")


def error_labels(spec: SourceSpec) -> dict[str, str]:
    """Canonical field → the column name as the user sees it in their file."""
    return {f: spec.column_label(f) for f in spec.fields}


def _subst(template: str, var: str, expr: str) -> str:
    """Replace the standalone identifier ``var`` in a rule template with ``expr``."""
    import re

    return re.sub(rf"(?<![A-Za-z0-9_'\"]){var}(?![A-Za-z0-9_'\"])", lambda _m: expr, template)

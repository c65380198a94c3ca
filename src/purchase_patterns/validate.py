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

import duckdb

from .errors import InputFileError
from .schema import FREQUENCY_PER_YEAR, SEASONS, US_STATES
from .sources import SourceSpec

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


# --------------------------------------------------------------------------------------------
# step 1: read


def read_source(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> ReadResult:
    """Create temp tables ``_src`` and ``_structural`` for ``spec``."""
    con.execute("drop table if exists _src")
    con.execute("drop table if exists _structural")
    con.execute(
        "create temp table _structural (line bigint, column_name varchar, reason varchar, "
        "raw_text varchar)"
    )
    path = str(spec.path)
    if spec.format == "parquet":
        return _read_parquet(con, spec)
    if spec.delimiter is None:
        return _read_whitespace(con, spec)
    return _read_delimited(con, spec, path)


def _csv_common(spec: SourceSpec) -> str:
    sn = spec.sniff
    opts = [
        f"encoding={lit(sn.encoding)}",
        "auto_detect=false",
        "all_varchar=true",
        f"compression={lit('gzip' if sn.compression == 'gzip' else 'none')}",
        "max_line_size=10000000",
    ]
    return ", ".join(opts)


def _read_whitespace(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> ReadResult:
    """Whitespace-separated logs (CDNOW): one record per physical line, no quoting."""
    n = len(spec.raw_columns)
    cols = ", ".join(
        f"t[{i + 1}] as c{i + 1}" for i in range(n)
    )
    skip = 1 if spec.header else 0
    con.execute(
        f"""
        create temp table _lines as
        select ordinality as _line, line as _raw,
               string_split_regex(trim(line), '\\s+') as t
        from read_csv(?, columns={{'line': 'VARCHAR'}}, delim='\x01', quote='', escape='',
                      header=false, {_csv_common(spec)}) with ordinality
        where ordinality > {skip} and line is not null and trim(line) <> ''
        """,  # noqa: S608 - only package-built option text is interpolated
        [str(spec.path)],
    )
    con.execute(
        f"""
        insert into _structural
        select _line, null,
               'expected {n} whitespace-separated fields, found ' || len(t), _raw
        from _lines where len(t) <> {n}
        """  # noqa: S608
    )
    con.execute(
        f"create temp table _src as select _line, _raw, {cols} from _lines where len(t) = {n}"  # noqa: S608
    )
    con.execute("drop table _lines")
    labels = {f"c{i + 1}": name for i, name in enumerate(spec.raw_columns)}
    return _result(con, list(labels), labels)


def _read_delimited(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: str) -> ReadResult:
    n = len(spec.raw_columns)
    names = [f"c{i + 1}" for i in range(n)]
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in names) + "}"
    k = next(_counter)
    rej, rej_scan = f"_rej_{k}", f"_rejscan_{k}"
    try:
        con.execute(
            f"""
            create temp table _read as
            select ordinality as _rec, * from read_csv(
                ?, columns={columns}, header=true, delim={lit(spec.delimiter or ',')},
                quote='"', escape='"', strict_mode=true, null_padding=false,
                store_rejects=true, rejects_table={lit(rej)}, rejects_scan={lit(rej_scan)},
                {_csv_common(spec)}) with ordinality
            """,  # noqa: S608
            [path],
        )
    except duckdb.Error as exc:
        raise InputFileError(spec.path, f"cannot be parsed as delimited text ({_first_line(exc)})") from None
    # Every reject record with its start line and raw text (one row per record, first error).
    con.execute(
        f"""
        insert into _structural
        select line, column_name, error_type || ': ' || error_message, csv_line
        from {rej}
        qualify row_number() over (partition by line order by byte_position) = 1
        """  # noqa: S608
    )
    con.execute(f"drop table if exists {rej}")
    con.execute(f"drop table if exists {rej_scan}")
    _assign_lines(con, names)
    labels = dict(zip(names, spec.raw_columns, strict=True))
    _relabel(con, "_structural", "column_name", labels)
    return _result(con, names, labels)


def _assign_lines(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    """Give every good record in ``_read`` the physical line it starts on, and turn the
    record numbers DuckDB reports for rejects into physical lines too.

    DuckDB numbers records (header = 1), not lines. Good records come in file order
    (``_rec``); reject ``j`` (sorted) at record ``R_j`` has ``R_j - 2 - (j - 1)`` good records
    before it, so good record ``k`` is record ``k + 1 + #{j : t_j <= k - 1}``. When a quoted
    field holds a newline, a record spans several lines and lines are a running sum of spans.
    """
    con.execute(
        """
        create temp table _rej_pos as
        select line as rec, line - 2 - (row_number() over (order by line) - 1) as t
        from _structural
        """
    )
    con.execute(
        """
        create temp table _src as
        with shifts as (
            select t, count(*) over (order by t rows unbounded preceding) as n
            from _rej_pos
        )
        select _rec + 1 + coalesce(s.n, 0) as _line, r.* exclude (_rec)
        from _read as r asof left join shifts as s on r._rec - 1 >= s.t
        """
    )
    con.execute("drop table _read")
    has_nl = con.execute(
        "select (select count(*) from _src where "  # noqa: S608
        + " or ".join(f"contains({c}, chr(10))" for c in names)
        + ") + (select count(*) from _structural where contains(raw_text, chr(10)))"
    ).fetchone()[0]
    if has_nl:
        span = " + ".join(
            f"coalesce(length({c}) - length(replace({c}, chr(10), '')), 0)" for c in names
        )
        con.execute(
            f"""
            create temp table _phys as
            with recs as (
                select _line as rec, 1 + {span} as span from _src
                union all
                select line, 1 + length(raw_text) - length(replace(raw_text, chr(10), ''))
                from _structural
            )
            select rec, 2 + coalesce(sum(span) over (
                order by rec rows between unbounded preceding and 1 preceding), 0) as line
            from recs
            """  # noqa: S608
        )
        con.execute(
            "update _src set _line = p.line from _phys as p where _src._line = p.rec"
        )
        con.execute(
            "update _structural set line = p.line from _phys as p where _structural.line = p.rec"
        )
        con.execute("drop table _phys")
    con.execute("drop table _rej_pos")


def _read_parquet(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> ReadResult:
    names = [f"c{i + 1}" for i in range(len(spec.raw_columns))]
    sel = ", ".join(
        f"cast({q(src)} as varchar) as {c}" for c, src in zip(names, spec.raw_columns, strict=True)
    )
    try:
        con.execute(
            f"create temp table _src as select ordinality as _line, {sel} "  # noqa: S608
            "from read_parquet(?) with ordinality",
            [str(spec.path)],
        )
    except duckdb.Error as exc:
        raise InputFileError(spec.path, f"unreadable Parquet file ({_first_line(exc)})") from None
    labels = dict(zip(names, spec.raw_columns, strict=True))
    return _result(con, names, labels)


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


def _result(con: duckdb.DuckDBPyConnection, names: list[str], labels: dict[str, str]) -> ReadResult:
    records = con.execute("select count(*) from _src").fetchone()[0]
    structural = con.execute("select count(*) from _structural").fetchone()[0]
    return ReadResult(records, structural, names, labels)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300]


# --------------------------------------------------------------------------------------------
# step 2: check


def _state_case() -> str:
    pairs = []
    for name, (code, *_rest) in US_STATES.items():
        pairs.append(f"when {lit(name.lower())} then {lit(name)}")
        pairs.append(f"when {lit(code.lower())} then {lit(name)}")
    return "case lower(v) " + " ".join(pairs) + " end"


_YES = "('yes','y','true','t','1')"
_NO = "('no','n','false','f','0')"
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
            "try_cast(v as integer)", "x between 1 and 100000",
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
            f"case when lower(v) in {_YES} then true when lower(v) in {_NO} then false end",
            bad_parse="expected Yes or No",
        ),
        "promo_code_used": FieldRule(
            f"case when lower(v) in {_YES} then true when lower(v) in {_NO} then false end",
            bad_parse="expected Yes or No",
        ),
        "age": FieldRule(
            "case when try_cast(v as double) = floor(try_cast(v as double)) "
            "and abs(try_cast(v as double)) < 1e6 then cast(try_cast(v as double) as integer) end",
            "x between 0 and 120",
            bad_parse="not a whole number", bad_check="age must be between 0 and 120",
        ),
        "gender": FieldRule(_map_case("lower(v)", _GENDER_CANON),
                            bad_parse="unknown gender (expected Male, Female, Non-binary, Other)"),
        "state": FieldRule(_state_case(),
                           bad_parse="not a US state (full name or two-letter code)"),
        "subscription_status": FieldRule(
            f"case when lower(v) in {_YES} then true when lower(v) in {_NO} then false end",
            bad_parse="expected Yes or No",
        ),
        "previous_purchases": FieldRule(
            "try_cast(v as integer)", "x between 0 and 100000",
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
    if spec.one_row_per_customer:
        cid = q("t_customer_id")
        col = lit("customer_id")
        errors.append(
            f"case when _first_line_of_customer <> _line then struct_pack(c := {col}, "
            "r := 'duplicate customer id in a one-row-per-customer file (first on line ' || "
            "_first_line_of_customer || ')') end"
        )
        dup_col = f", min(_line) over (partition by {cid}) as _first_line_of_customer"
    else:
        dup_col = ""
    raw_text = "_raw" if spec.delimiter is None and spec.format != "parquet" else (
        "concat_ws(" + lit(spec.delimiter or ",") + ", "
        + ", ".join(f"coalesce({c}, '')" for c in read.raw_columns) + ")"
    )
    con.execute("drop table if exists _checked")
    con.execute(
        f"""
        create temp table _checked as
        with t as (
            select _line, {raw_text} as _raw_text, {", ".join(text_cols)} from _src
        ), p as (
            select *, {", ".join(typed_cols)}{dup_col} from t
        )
        select * exclude ({", ".join(q("t_" + f) for f in rules if f in spec.fields)}),
               list_filter([{", ".join(errors)}], lambda e: e is not null) as _errors
        from p
        """  # noqa: S608
    )


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

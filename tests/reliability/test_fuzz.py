"""Property-based fuzzing (hypothesis) of the readers and the validator, through ``ingest_file``.

Well-formed documents: a purchases CSV with random header names (known aliases, in any order,
plus extra columns), delimiter, quoting, encoding, compression, line ends, blank lines and
field values (valid ones, invalid ones, hostile text: delimiters, quotes, line breaks, SQL,
formulas, non-ASCII), some rows structurally broken. The test knows from the construction
which rows are valid and on which line each starts, and checks: rows_in = rows_loaded +
rows_rejected (also counted from the tables), no valid row is lost, every other row is
rejected with its line and a reason, and what was loaded reads back unchanged.

Garbage documents (random bytes and random delimited text): either one ``InputFileError``
naming the file, or the same accounting holds.

Budget: the ``ci`` profile (the default, used by ``make test``) runs a few dozen examples per
test; ``PURCHASE_PATTERNS_FUZZ_PROFILE=long`` runs thousands.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import os
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from purchase_patterns import warehouse
from purchase_patterns.errors import InputFileError
from purchase_patterns.ingest import ingest_file
from purchase_patterns.lake import Lake
from purchase_patterns.settings import load_settings

settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large])
settings.register_profile(
    "long", max_examples=3000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large])
PROFILE = os.environ.get("PURCHASE_PATTERNS_FUZZ_PROFILE", "ci")

# -- the contract, as an oracle over the values this test generates -------------------------

#: header spellings per canonical field (all recognised by the Kaggle alias table)
HEADERS = {
    "customer_id": ["Customer ID", "customer_id", "Client ID"],
    "amount": ["Purchase Amount (USD)", "purchase_amount", "Amount"],
    "item": ["Item Purchased", "item", "Product"],
    "category": ["Category", "product_category"],
    "age": ["Age", "AGE"],
    "gender": ["Gender", "Sex"],
    "state": ["Location", "State"],
    "season": ["Season"],
    "review_rating": ["Review Rating", "rating"],
    "subscription_status": ["Subscription Status", "subscribed"],
    "previous_purchases": ["Previous Purchases"],
    "purchase_frequency": ["Frequency of Purchases", "purchase_frequency"],
    "size": ["Size"],
}
REQUIRED = ("customer_id", "amount", "item", "category")  # the header signature

#: (valid values, invalid values) for fields with a closed or numeric domain
DOMAINS: dict[str, tuple[list[str], list[str]]] = {
    "amount": (["0", "12", "53.5", "$1,234.50", "9999999.99", " 7 "],
               ["-1", "abc", "10000000", "12..5", ""]),
    "age": (["0", "35", "120", "35.0", ""], ["121", "-1", "30.5", "old"]),
    "gender": (["Male", "female", "M", "Non-binary", "unknown", ""], ["Robot", "x"]),
    "state": (["Texas", "tx", "District of Columbia", "new york", ""], ["Narnia", "Ontario"]),
    "season": (["Winter", "autumn", "SUMMER", ""], ["Monsoon"]),
    "review_rating": (["1", "4.5", "5.0", ""], ["0.5", "6", "good"]),
    "subscription_status": (["Yes", "no", "TRUE", "0", "y", ""], ["maybe"]),
    "previous_purchases": (["0", "14", "100000", ""], ["-1", "1.5", "x"]),
    "purchase_frequency": (["Weekly", "bi-weekly", "Every 3 Months", "annually", ""],
                           ["Hourly"]),
}
#: free text: any characters but NUL (pieces, as a line end may be two characters)
TEXT_PIECES = st.sampled_from(
    list("abcxyzABC019 ,;|\t\"'=+-@.$%()") + ["\n", "\r\n", "é", "ß", "漢", "👍", "\u00a0"])
HOSTILE = ["'; drop table raw.purchases; --", "=1+1", "+SUM(A1)", "-2", "@cmd",
           'a "quoted" word', "line\nbreak", "x\r\ny", "Robert'); DROP TABLE x;--", "   ",
           "", "NULL", "null"]


@dataclass
class Row:
    values: dict[str, str]  # canonical field → raw text written
    valid: bool  # every value passes the contract
    broken: str | None = None  # "short" | "long": the row has too few / too many fields


def free_text(draw, limit: int) -> str:
    return draw(st.one_of(st.sampled_from(HOSTILE),
                          st.lists(TEXT_PIECES, max_size=limit // 2).map("".join)))


#: what DuckDB's trim() removes: spaces of Unicode category Zs (not tabs or line ends)
SPACES = "".join(chr(c) for c in range(0x3001) if unicodedata.category(chr(c)) == "Zs")


def trim(value: str) -> str:
    return value.strip(SPACES)


def text_valid(value: str, limit: int, required: bool) -> bool:
    stripped = trim(value)
    if not stripped:
        return not required
    return len(stripped) <= limit


@st.composite
def documents(draw):
    fields = list(REQUIRED) + draw(st.lists(st.sampled_from(
        [f for f in HEADERS if f not in REQUIRED]), unique=True, max_size=6))
    extra = draw(st.lists(st.sampled_from(["Notes", "Loyalty Tier", "x'); drop--", "Ünïcode"]),
                          unique=True, max_size=2))
    order = draw(st.permutations(fields + extra))
    names = {f: draw(st.sampled_from(HEADERS[f])) for f in fields}
    n = draw(st.integers(1, 12))
    rows: list[Row] = []
    for i in range(n):
        values: dict[str, str] = {}
        valid = True
        for f in fields:
            if f == "customer_id":
                hostile = draw(st.booleans())
                values[f] = f"{draw(st.sampled_from(HOSTILE[:5]))}#{i}" if hostile else f"C{i}"
            elif f in DOMAINS:
                good, bad = DOMAINS[f]
                ok = draw(st.integers(0, 9)) > 0
                values[f] = draw(st.sampled_from(good if ok else bad))
                valid &= ok
            else:
                limit = 20 if f == "size" else 60
                values[f] = free_text(draw, limit)
                valid &= text_valid(values[f], 20 if f == "size" else 200,
                                    required=False) and "\x00" not in values[f]
        for x in extra:
            values[x] = draw(st.sampled_from(["", "gold", "a,b", "=X"]))
        broken = draw(st.sampled_from([None] * 8 + ["short", "long"]))
        rows.append(Row(values, valid and broken is None, broken))
    return {
        "order": order, "names": names, "rows": rows,
        "delimiter": draw(st.sampled_from([",", ";", "\t", "|"])),
        "quoting": draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        "eol": draw(st.sampled_from(["\n", "\r\n", "\r"])),
        "encoding": draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16",
                                          "utf-16-be-bom"])),
        "gzip": draw(st.booleans()),
        "blank_after": draw(st.sets(st.integers(0, n), max_size=3)),
    }


BREAK = re.compile(r"\r\n|\r|\n")


def render(doc: dict) -> tuple[bytes, list[int]] | None:
    """The file's bytes and the line each data row starts on; None when the text cannot be
    written in the drawn encoding (latin-1 and non-Latin characters)."""
    buf = io.StringIO()
    line = io.StringIO()
    # csv quotes a value holding a character of its line terminator only: with "\r\n" it
    # quotes every value with a line break; the row's own line end is then the drawn one
    writer = csv.writer(line, delimiter=doc["delimiter"], quoting=doc["quoting"],
                        lineterminator="\r\n")

    def writerow(cells: list[str]) -> None:
        line.seek(0)
        line.truncate()
        writer.writerow(cells)
        buf.write(line.getvalue()[:-2] + doc["eol"])

    order = doc["order"]
    writerow([doc["names"].get(c, c) for c in order])
    starts: list[int] = []
    if 0 in doc["blank_after"]:
        buf.write(doc["eol"])
    for i, row in enumerate(doc["rows"]):
        starts.append(len(BREAK.findall(buf.getvalue())) + 1)
        cells = [row.values[c] for c in order]
        if row.broken == "short":
            cells = cells[:-1]
        elif row.broken == "long":
            cells = [*cells, "surplus"]
        writerow(cells)
        if i + 1 in doc["blank_after"]:
            buf.write(doc["eol"])
    content = buf.getvalue()
    enc = doc["encoding"]
    try:
        if enc == "utf-16-be-bom":
            data = codecs.BOM_UTF16_BE + content.encode("utf-16-be")
        elif enc == "utf-16":
            data = codecs.BOM_UTF16_LE + content.encode("utf-16-le")
        else:
            data = content.encode(enc)
    except UnicodeEncodeError:
        return None
    return (gzip.compress(data, mtime=0) if doc["gzip"] else data), starts


# -- the harness ----------------------------------------------------------------------------

_ids = itertools.count()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    settings_ = load_settings(home=tmp_path_factory.mktemp("fuzz") / "home")
    con = warehouse.connect(settings_)
    folder = tmp_path_factory.mktemp("fuzz-inputs")
    yield con, Lake(settings_.lake), folder
    con.close()


def _accounting(con, res) -> list[tuple]:
    """rows_in = loaded + rejected, counted from the tables; every reject has a line, a reason
    and the raw text; returns the rejects."""
    assert res.rows_in == res.rows_loaded + res.rows_rejected
    n_loaded, n_rejected = con.execute(
        "select (select count(*) from raw.purchases where batch_id = $b), "
        "(select count(distinct line) from raw.rejects where batch_id = $b)",
        {"b": res.batch_id}).fetchone()
    assert (n_loaded, n_rejected) == (res.rows_loaded, res.rows_rejected)
    rejects = con.execute("select line, column_name, reason, raw_text from raw.rejects "
                          "where batch_id = ?", [res.batch_id]).fetchall()
    assert all(line is not None and line >= 1 and reason and raw is not None
               for line, _c, reason, raw in rejects)
    return rejects


def _amount(text: str) -> Decimal:
    return Decimal(text.strip().lstrip("$").strip().replace(",", ""))


@settings(settings.get_profile(PROFILE))
@given(doc=documents())
def test_well_formed_documents(env, doc) -> None:
    con, lake, folder = env
    rendered = render(doc)
    if rendered is None:
        return  # not encodable in the drawn encoding
    data, starts = rendered
    path = folder / f"doc{next(_ids)}.csv{'.gz' if doc['gzip'] else ''}"
    path.write_bytes(data)
    res = ingest_file(con, lake, path, run_id="fuzz")
    rejects = _accounting(con, res)
    rows = doc["rows"]
    assert res.rows_in == len(rows)
    valid_lines = {starts[i] for i, r in enumerate(rows) if r.valid}
    loaded = {line: (cid, item, amount) for line, cid, item, amount in con.execute(
        "select source_line, customer_id, item, amount from raw.purchases where batch_id = ?",
        [res.batch_id]).fetchall()}
    # exactly the valid rows load, on the lines they were written on; the others are rejected
    assert set(loaded) == valid_lines, (sorted(loaded), sorted(valid_lines), rejects)
    assert {line for line, *_ in rejects} == set(starts) - valid_lines
    # what was loaded reads back unchanged (text trimmed of spaces, amount in cents)
    for i, row in enumerate(rows):
        if not row.valid:
            continue
        cid, item, amount = loaded[starts[i]]
        assert cid == trim(row.values["customer_id"])
        assert item == (trim(row.values["item"]) or None)
        assert amount == _amount(row.values["amount"])


GARBAGE_ALPHABET = st.sampled_from(list("ab1,;|\t\"' \n\r$-.") + ["\x00", "\x01", "é", "\ufeff"])


@st.composite
def garbage(draw):
    kind = draw(st.sampled_from(["bytes", "text", "headed"]))
    if kind == "bytes":
        return draw(st.binary(max_size=400))
    body = draw(st.text(GARBAGE_ALPHABET, max_size=400))
    if kind == "headed":  # a recognisable header over random text
        delim = draw(st.sampled_from([",", ";", "|"]))
        body = delim.join(["Customer ID", "Item Purchased", "Category",
                           "Purchase Amount (USD)"]) + draw(st.sampled_from(["\n", "\r\n"])) + body
    return body.encode(draw(st.sampled_from(["utf-8", "utf-16"])))


@settings(settings.get_profile(PROFILE))
@given(data=garbage(), gz=st.booleans())
def test_garbage_is_refused_in_one_line_or_accounted(env, data: bytes, gz: bool) -> None:
    con, lake, folder = env
    path = folder / f"garbage{next(_ids)}.csv"
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    try:
        res = ingest_file(con, lake, path, run_id="fuzz")
    except InputFileError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message
        return
    _accounting(con, res)

"""Bad input: file-level problems stop that file with one line naming file (and line) and the
problem; row-level problems quarantine exactly the bad rows with line, column and reason."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from helpers import query

from purchase_patterns import warehouse
from purchase_patterns.errors import InputFileError
from purchase_patterns.ingest import ingest_file
from purchase_patterns.lake import Lake

HEADER = (
    "Customer ID,Age,Gender,Item Purchased,Category,Purchase Amount (USD),Location,Size,Color,"
    "Season,Review Rating,Subscription Status,Payment Method,Shipping Type,Discount Applied,"
    "Promo Code Used,Previous Purchases,Preferred Payment Method,Frequency of Purchases"
)
FIELDS = HEADER.split(",")


def row(cid: int = 1, **changes: str) -> str:
    values = dict(zip(FIELDS, [
        str(cid), "55", "Male", "Blouse", "Clothing", "53", "Kentucky", "L", "Gray", "Winter",
        "3.1", "Yes", "Credit Card", "Express", "Yes", "Yes", "14", "Venmo", "Fortnightly",
    ], strict=True))
    values.update(changes)
    return ",".join(values[f] for f in FIELDS)


def ingest(settings, path: Path):
    con = warehouse.connect(settings)
    try:
        return ingest_file(con, Lake(settings.lake), path, run_id="t")
    finally:
        con.close()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "file is empty"),
        ("blank.csv", b"\n\n  \n", "only blank lines"),
        ("header_only.csv", (HEADER + "\n").encode(), "header but no data rows"),
        ("garbage.bin", bytes(range(256)) * 40, "not delimited text"),
        ("no_delimiter.txt", b"hello world\nthis is prose\n", "not delimited text"),
        ("unknown_header.csv", b"a,b,c\n1,2,3\n", "no recognisable header"),
        ("missing_amount.csv",
         b"Customer ID,Item Purchased,Category,Age\n1,Blouse,Clothing,3\n", "no recognisable header"),
        ("dup_columns.csv", (HEADER + ",Age\n" + row() + ",40\n").encode(), "duplicated column"),
        ("corrupt.csv.gz", gzip.compress((HEADER + "\n" + row() + "\n").encode(), mtime=0)[:40],
         "gzip data is corrupt"),
    ],
)
def test_file_level_errors_name_file_and_problem(settings, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputFileError) as exc:
        ingest(settings, path)
    text = str(exc.value)
    assert str(path) in text and message in text
    assert "\n" not in text
    # nothing was loaded or landed for the file
    con = warehouse.connect(settings)
    try:
        assert con.execute("select count(*) from raw.batches").fetchall() == [(0,)]
    finally:
        con.close()


def test_missing_path_and_directory(settings, tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        ingest(settings, tmp_path / "nope.csv")
    with pytest.raises(InputFileError, match="is a directory"):
        ingest(settings, tmp_path)


def test_bad_rows_are_quarantined_with_line_column_reason(settings, tmp_path):
    lines = [
        HEADER,
        row(1),                                                  # 2 ok
        row(2, **{"Purchase Amount (USD)": "-5"}),               # 3 negative amount
        row(3, **{"Item Purchased": '"Blouse,\nwith newline"'}),  # 4-5 ok, spans two lines
        row(4, Age="200"),                                       # 6 absurd age
        "5,30,Male",                                             # 7 missing columns
        row(6, **{"Purchase Amount (USD)": "abc"}),              # 8 not a number
        row(7, Location="Narnia"),                               # 9 unknown state
        row(8, **{"Review Rating": "9"}),                        # 10 rating out of range
        row(9, Gender="Robot"),                                  # 11 unknown enumeration
        row(10, **{"Subscription Status": "maybe"}),             # 12 bad flag
        row(1),                                                  # 13 duplicate customer
        row(11, Location="TX", **{"Customer ID": ""}),           # 14 missing customer id
        row(12, Location="tx"),                                  # 15 ok: state code accepted
    ]
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(lines) + "\n")
    res = ingest(settings, path)
    assert (res.rows_in, res.rows_loaded, res.rows_rejected) == (13, 3, 10)
    rejects = query(settings.warehouse_path,
                    "select line, column_name, reason from raw.rejects order by line")
    by_line = {ln: (col, reason) for ln, col, reason in rejects}
    assert by_line[3][0] == "Purchase Amount (USD)" and "between 0" in by_line[3][1]
    assert by_line[6] == ("Age", "age must be between 0 and 120")
    assert "MISSING COLUMNS" in by_line[7][1]
    assert by_line[8] == ("Purchase Amount (USD)", "not a number")
    assert by_line[9][0] == "Location" and "US state" in by_line[9][1]
    assert by_line[10][0] == "Review Rating"
    assert by_line[11][0] == "Gender"
    assert by_line[12][0] == "Subscription Status"
    assert by_line[13][0] == "Customer ID" and "first on line 2" in by_line[13][1]
    assert by_line[14] == ("Customer ID", "missing value")
    loaded = query(settings.warehouse_path,
                   "select source_line, customer_id, item, state from raw.purchases order by 1")
    assert loaded == [(2, "1", "Blouse", "Kentucky"), (4, "3", "Blouse,\nwith newline", "Kentucky"),
                      (15, "12", "Blouse", "Texas")]
    raw = query(settings.warehouse_path, "select raw_text from raw.rejects where line = 8")[0][0]
    assert "abc" in raw


def test_unterminated_quote_stops_the_file_at_its_line(settings, tmp_path):
    """A quote that never closes would make the rest of the file one value (and DuckDB's
    reader loses part of it in large files): the file stops, naming the line."""
    path = tmp_path / "unterminated.csv"
    path.write_text("\n".join([HEADER, row(1), row(2, Size='"L'), row(3)]) + "\n")
    with pytest.raises(InputFileError, match=r"unterminated\.csv:3: .*unterminated quote"):
        ingest(settings, path)
    assert query(settings.warehouse_path, "select count(*) from raw.batches") == [(0,)]


def test_invalid_utf8_row_is_rejected_not_lost(settings, tmp_path):
    path = tmp_path / "bad_bytes.csv"
    body = "\n".join([HEADER, row(1), row(2), row(3)]).encode()
    # a long clean prefix so sniffing says utf-8, then a broken byte late in the file
    filler = "\n".join(row(i) for i in range(10, 2000)).encode()
    path.write_bytes(body + b"\n" + filler + b"\n" + row(5000).encode().replace(b"Gray", b"Gr\xffy") + b"\n")
    res = ingest(settings, path)
    assert res.rows_in == 3 + 1990 + 1
    assert res.rows_rejected == 1 and res.rows_loaded == res.rows_in - 1
    [(line, reason)] = query(settings.warehouse_path, "select line, reason from raw.rejects")
    assert line == 1995 and "ENCODING" in reason


def test_cdnow_bad_lines(settings, tmp_path):
    path = tmp_path / "cdnow_bad.txt"
    path.write_text(
        "00001 19970101 1 11.77\n"
        "00002 19970112 1\n"           # missing a field
        "00003 19971345 2 20.00\n"     # no such date
        "00004 19970101 x 20.00\n"     # quantity not a number
        "00005 19970101 1 -3.00\n"     # negative amount
        "00006 19970101 1 5.00\n"
    )
    res = ingest(settings, path)
    assert (res.format, res.rows_in, res.rows_loaded, res.rows_rejected) == ("cdnow", 6, 2, 4)
    got = query(settings.warehouse_path, "select line, column_name from raw.rejects order by 1")
    assert got == [(2, None), (3, "date"), (4, "number_of_cds"), (5, "dollar_value")]


def test_check_pass_refuses_a_plan_that_would_reorder_records():
    """Line numbers come from the order the check pass stores records; a rule that DuckDB
    plans as a join (which need not keep that order) stops the pass instead of misnumbering."""
    import duckdb

    from purchase_patterns.validate import _keeps_order

    con = duckdb.connect()
    con.execute("create table t as select range as v from range(10)")
    _keeps_order(con, "select v + 1 from t where v > 2")
    with pytest.raises(RuntimeError, match="join"):
        _keeps_order(con, "select v from t where v in (select range from range(5))")
    con.execute("set preserve_insertion_order = false")
    with pytest.raises(RuntimeError, match="preserve_insertion_order"):
        _keeps_order(con, "select v from t")

"""Ingest on the real files: counts, sums and lineage checked against DuckDB reading the raw
files independently, idempotent re-runs, and the lake layout."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from pathlib import Path

import duckdb
import pytest
from helpers import query, scalar

from purchase_patterns import warehouse
from purchase_patterns.ingest import ingest_file, land_file, load_landed, pending_batches
from purchase_patterns.lake import Lake


def _ingest(settings, *paths: Path, **kw):
    con = warehouse.connect(settings)
    lake = Lake(settings.lake)
    try:
        return [ingest_file(con, lake, p, run_id="test-run", **kw) for p in paths]
    finally:
        con.close()


def _invariant(db: Path) -> None:
    """rows_in = rows_loaded + rows_rejected for every batch, counted from the tables."""
    rows = query(db, """
        select b.batch_id, b.rows_in, b.rows_loaded, b.rows_rejected,
               (select count(*) from raw.purchases p where p.batch_id = b.batch_id),
               (select count(distinct line) from raw.rejects r where r.batch_id = b.batch_id)
        from raw.batches b""")
    assert rows
    for _bid, rows_in, loaded, rejected, n_p, n_r in rows:
        assert rows_in == loaded + rejected
        assert (loaded, rejected) == (n_p, n_r)


def test_kaggle_file_loads_every_row(settings, kaggle_csv):
    [res] = _ingest(settings, kaggle_csv)
    assert (res.format, res.rows_in, res.rows_loaded, res.rows_rejected) == ("kaggle", 3900, 3900, 0)
    assert res.dated is False
    db = settings.warehouse_path
    raw_total = duckdb.execute(
        f"select sum(\"Purchase Amount (USD)\") from read_csv('{kaggle_csv}')"
    ).fetchall()[0][0]
    assert scalar(db, "select sum(amount) from raw.purchases") == raw_total == 233081
    # per-season revenue and customer attributes survive the trip unchanged
    expected = dict(duckdb.execute(
        f"select Season, sum(\"Purchase Amount (USD)\") from read_csv('{kaggle_csv}') group by 1"
    ).fetchall())
    got = dict(query(db, "select season, sum(amount) from raw.purchases group by 1"))
    assert got == expected
    row = query(db, "select customer_id, age, gender, state, subscription_status, "
                    "payment_method, preferred_payment_method, purchase_frequency, source_line "
                    "from raw.purchases where customer_id = '1'")[0]
    assert row == ("1", 55, "Male", "Kentucky", True, "Credit Card", "Venmo", "Fortnightly", 2)
    _invariant(db)


def test_kaggle_18_column_variant_with_renamed_headers(settings, kaggle_csv, tmp_path):
    """The widespread 18-column copy: no per-purchase payment column, its 'Payment Method'
    holds the preferred method; headers renamed (snake_case, no unit)."""
    with kaggle_csv.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = [h for h in rows[0] if h != "Payment Method"]
    renamed = {h: h.lower().replace(" ", "_") for h in header}
    renamed["Purchase Amount (USD)"] = "Purchase Amount"
    renamed["Preferred Payment Method"] = "Payment Method"
    variant = tmp_path / "shopping_behavior_updated.csv"
    with variant.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([renamed[h] for h in header])
        for r in rows:
            w.writerow([r[h] for h in header])
    [res] = _ingest(settings, variant)
    assert res.variant.startswith("18-column")
    assert (res.rows_loaded, res.rows_rejected) == (3900, 0)
    db = settings.warehouse_path
    assert scalar(db, "select count(*) from raw.purchases where payment_method is not null") == 0
    assert query(db, "select preferred_payment_method, sum(amount) from raw.purchases "
                     "where customer_id = '2' group by 1") == [("Cash", 64)]


def test_cdnow_master_and_sample(settings, cdnow_master, cdnow_sample):
    master, sample = _ingest(settings, cdnow_master, cdnow_sample)
    assert (master.format, master.rows_loaded, master.rows_rejected) == ("cdnow", 69659, 0)
    assert (sample.format, sample.rows_loaded, sample.rows_rejected) == ("cdnow", 6919, 0)
    assert master.dated and sample.dated
    db = settings.warehouse_path
    # independent read of the raw text with Python
    total = 0.0
    customers = set()
    with cdnow_master.open() as fh:
        next(fh)
        for line in fh:
            cid, _d, _n, dollars = line.split()
            customers.add(cid)
            total += float(dollars)
    got = query(db, "select count(distinct customer_id), sum(amount), min(purchase_date), "
                    "max(purchase_date) from raw.purchases where batch_id = ?", [master.batch_id])
    assert got[0][0] == len(customers) == 23570
    assert float(got[0][1]) == pytest.approx(total, abs=0.005)
    assert str(got[0][2]) == "1997-01-01" and str(got[0][3]) == "1998-06-30"
    # the sample's second id column is ignored, its first is the customer
    assert scalar(db, "select count(distinct customer_id) from raw.purchases where batch_id = ?",
                  [sample.batch_id]) == 2357
    _invariant(db)


def test_same_content_twice_adds_nothing(settings, kaggle_csv, tmp_path):
    copy = tmp_path / "renamed_copy.csv"
    copy.write_bytes(kaggle_csv.read_bytes())
    first, second, third = _ingest(settings, kaggle_csv, kaggle_csv, copy)
    assert not first.duplicate_skipped
    assert second.duplicate_skipped and third.duplicate_skipped
    assert scalar(settings.warehouse_path, "select count(*) from raw.purchases") == 3900
    assert scalar(settings.warehouse_path, "select count(*) from raw.batches") == 1


def test_lake_holds_raw_unchanged_and_validated_parquet(settings, kaggle_csv):
    [res] = _ingest(settings, kaggle_csv)
    sha = hashlib.sha256(kaggle_csv.read_bytes()).hexdigest()
    assert res.batch_id == sha
    raw = Path(res.lake_raw_uri)
    assert raw.read_bytes() == kaggle_csv.read_bytes()
    assert "raw/source=kaggle/ingest_date=" in raw.as_posix() and raw.name == f"{sha}.csv"
    parquet = Path(res.lake_parquet_uri)
    assert duckdb.execute(f"select count(*) from read_parquet('{parquet}')").fetchall() == [(3900,)]
    manifest = Lake(settings.lake).manifest()
    assert [(m["batch_id"], m["status"], m["rows_loaded"]) for m in manifest] == [(sha, "loaded", 3900)]


def test_land_then_load_separately(settings, cdnow_sample):
    """The two-DAG path: land now, load later from the lake."""
    lake = Lake(settings.lake)
    entry = land_file(lake, cdnow_sample)
    assert entry["status"] == "landed"
    con = warehouse.connect(settings)
    try:
        assert [e["batch_id"] for e in pending_batches(con, lake)] == [entry["batch_id"]]
        res = load_landed(con, lake, entry, run_id="r")
        assert res.rows_loaded == 6919 and res.file == "CDNOW_sample.txt"
        assert pending_batches(con, lake) == []
        again = load_landed(con, lake, entry, run_id="r2")
        assert again.duplicate_skipped
    finally:
        con.close()


def test_gzip_bom_crlf_and_semicolons(settings, kaggle_csv, tmp_path):
    text = kaggle_csv.read_text()
    lines = text.splitlines()
    variants = {
        "gz.csv.gz": gzip.compress(text.encode()),
        "bom_crlf.csv": ("\ufeff" + "\r\n".join(lines[:101]) + "\r\n").encode(),
        "semicolon.csv": "\n".join(
            ";".join(next(csv.reader([ln]))) for ln in lines[:51]).encode(),
        "cr_only.csv": ("\r".join(lines[:11]) + "\r").encode(),
    }
    paths = []
    for name, data in variants.items():
        p = tmp_path / name
        p.write_bytes(data)
        paths.append(p)
    results = _ingest(settings, *paths)
    assert [(r.rows_loaded, r.rows_rejected) for r in results] == [
        (3900, 0), (100, 0), (50, 0), (10, 0)]
    _invariant(settings.warehouse_path)


def test_latin1_and_utf16(settings, tmp_path, kaggle_csv):
    lines = kaggle_csv.read_text().splitlines()[:6]
    fields = lines[3].split(",")
    fields[3] = "Jéans"  # Item Purchased of the record on line 4
    lines[3] = ",".join(fields)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("\n".join(lines).encode("latin-1"))
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("\n".join(lines).encode("utf-16"))
    a, b = _ingest(settings, latin, utf16)
    assert (a.rows_loaded, b.rows_loaded) == (5, 5)
    items = [r[0] for r in query(settings.warehouse_path,
                                 "select item from raw.purchases where source_line = 4")]
    assert items and all("é" in i for i in items)


def test_parquet_input(settings, tmp_path, kaggle_csv):
    pq = tmp_path / "purchases.parquet"
    duckdb.execute(f"copy (select * from read_csv('{kaggle_csv}')) to '{pq}' (format parquet)")
    [res] = _ingest(settings, pq)
    assert (res.format, res.rows_loaded, res.rows_rejected) == ("parquet", 3900, 0)
    assert scalar(settings.warehouse_path, "select sum(amount) from raw.purchases") == 233081


def test_column_mapping(settings, tmp_path, cdnow_sample):
    lines = cdnow_sample.read_text().splitlines()[:200]
    src = tmp_path / "orders.csv"
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["Order Date", "Client", "Total $", "Units", "Region"])
    for ln in lines:
        cid, _sid, d, n, dollars = ln.split()
        w.writerow([f"{d[6:]}/{d[4:6]}/{d[:4]}", cid, dollars, n, "Texas"])
    src.write_text(buf.getvalue())
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "date_format: '%d/%m/%Y'\n"
        "columns:\n  customer_id: Client\n  purchase_date: Order Date\n"
        "  amount: Total $\n  quantity: Units\n  state: Region\n"
    )
    [res] = _ingest(settings, src, mapping=mapping)
    assert (res.format, res.rows_loaded, res.rows_rejected) == ("mapped", 200, 0)
    got = query(settings.warehouse_path,
                "select min(purchase_date), count(distinct state), sum(quantity) from raw.purchases")
    expected_units = sum(int(ln.split()[3]) for ln in lines)
    assert str(got[0][0]) == "1997-01-01" and got[0][1] == 1 and got[0][2] == expected_units


def test_pipeline_land_then_load_pending(settings, kaggle_csv, cdnow_sample):
    from purchase_patterns.pipeline import land_inputs, load_pending, new_summary

    entries = land_inputs(settings, [kaggle_csv, cdnow_sample])
    assert [e["status"] for e in entries] == ["landed", "landed"]
    first = new_summary(settings, "load")
    results = load_pending(settings, first)
    assert sorted(r.rows_loaded for r in results) == [3900, 6919]
    retry = new_summary(settings, "load")
    assert load_pending(settings, retry) == []  # a retried load adds nothing
    assert scalar(settings.warehouse_path, "select count(*) from raw.purchases") == 10819


class _SmallLimitScan:
    """``ingest._LineScan`` with a 40-byte line limit, fed through its LF fast path (``feed``)
    or only through the exact NumPy path (``_feed_any``)."""

    def __init__(self, exact: bool) -> None:
        from purchase_patterns.ingest import _LineScan

        class Scan(_LineScan):
            LIMIT = 40

        self.scan = Scan(Path("f.csv"))
        self.feed = self.scan._feed_any if exact else self.scan.feed

    def run(self, data: bytes, chunk: int) -> tuple:
        from purchase_patterns.errors import InputFileError

        try:
            for i in range(0, len(data), chunk):
                self.feed(data[i:i + chunk])
        except InputFileError as exc:
            return ("too long", exc.line)
        s = self.scan
        return (s.ends, s.run, s.blank, s.blank_pending, s.soh_line, s.text_lines)


def test_line_scan_fast_path_agrees_with_the_exact_path():
    """The LF fast path of the landing scan reports what the NumPy path reports — line ends,
    blank lines with text after them, the first U+0001, the last line of text and the first
    line over the limit — for random text cut into chunks of every size, including chunks
    that start or end inside a blank line or a long line, and text with CR line ends mixed in
    (which takes the exact path)."""
    import random

    rng = random.Random(7)
    pieces = [b"a", b"bc,d", b"\n", b"\n", b"\n\n", b"\x01", b"x" * 30, b"y" * 45, b"\r\n", b"\r"]
    seen = {"too long": 0, "blank": 0, "soh": 0, "cr": 0}
    for trial in range(400):
        allowed = pieces if trial % 4 == 0 else [p for p in pieces if b"\r" not in p]
        weights = [1 if b"y" * 45 != p else 0.05 for p in allowed]
        data = b"".join(rng.choices(allowed, weights, k=rng.randint(0, 60)))
        for chunk in (1, 2, 3, 7, 16, 41, 100, 10_000):
            fast = _SmallLimitScan(exact=False).run(data, chunk)
            exact = _SmallLimitScan(exact=True).run(data, chunk)
            assert fast == exact, (data, chunk)
            seen["too long"] += fast[0] == "too long"
            seen["blank"] += fast[0] != "too long" and fast[2]
            seen["soh"] += fast[0] != "too long" and fast[4] is not None
            seen["cr"] += b"\r" in data
    # the random text reached every outcome the comparison is about
    assert all(n > 0 for n in seen.values()), seen

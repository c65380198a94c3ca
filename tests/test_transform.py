"""The dbt transform on the real files: marts checked against values computed here with DuckDB
straight from the raw files, date models skipped on undated data, a tampered warehouse caught
by the reconciliation and key checks, the data-quality results table and report, and docs."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from helpers import query, scalar

from purchase_patterns import warehouse
from purchase_patterns.ingest import ingest_file
from purchase_patterns.lake import Lake
from purchase_patterns.schema import FREQUENCY_PER_YEAR, US_STATES
from purchase_patterns.settings import load_settings
from purchase_patterns.transform import (
    DATED_REASON,
    UPSTREAM_REASON,
    docs,
    run_transform,
    summarise,
    write_quality_report,
    write_quality_results,
)

DATED_MODELS = {"agg_sales_by_month", "agg_sales_by_week", "agg_sales_by_weekday",
                "agg_cohort_retention"}
ALWAYS_MODELS = {"dim_customers", "dim_products", "fct_purchases", "customer_features",
                 "agg_sales_by_season", "agg_category_performance", "agg_item_performance",
                 "agg_sales_by_state", "agg_sales_by_region", "agg_promotion_effects",
                 "quality_batch_drift"}


def _data_dir() -> Path:
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not (path / "shopping_trends.csv").exists():
        msg = f"real test data not found at {path}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def _load(home: Path, *files: Path):
    settings = load_settings(home=home)
    con = warehouse.connect(settings)
    try:
        batches = [ingest_file(con, Lake(settings.lake), f, run_id="r1") for f in files]
    finally:
        con.close()
    return settings, batches


def _tables(db: Path, schema: str) -> set[str]:
    return {r[0] for r in query(db, "select table_name from information_schema.tables "
                                    "where table_schema = ?", [schema])}


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    csv = _data_dir() / "shopping_trends.csv"
    settings, batches = _load(tmp_path_factory.mktemp("kaggle") / "home", csv)
    result = run_transform(settings, "r1", dated=False)
    return settings, batches, result, csv


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    txt = _data_dir() / "cdnow" / "CDNOW_master.txt"
    settings, batches = _load(tmp_path_factory.mktemp("cdnow") / "home", txt)
    result = run_transform(settings, "r1", dated=True)
    return settings, batches, result, txt


def _cdnow_raw(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """The CDNOW file parsed independently of the loader: customer, date, cds, dollars."""
    con.execute(f"""
        create or replace temp view cd as
        with lines as (
            select regexp_split_to_array(trim(line), '\\s+') as f
            from read_csv('{path}', header = true, columns = {{'line': 'VARCHAR'}},
                          delim = '\\t', quote = '')
        )
        select f[1] as customer_id, strptime(f[2], '%Y%m%d')::date as purchase_date,
               f[3]::int as cds, f[4]::decimal(18, 2) as amount
        from lines""")


# -- Kaggle snapshot (no dates) -----------------------------------------------------------------


def test_kaggle_build_succeeds_and_skips_date_models(kaggle):
    settings, _, result, _ = kaggle
    assert result.success, result.message
    assert result.failed_checks == []
    assert ALWAYS_MODELS <= set(result.models_built)
    assert dict(result.models_skipped) == dict.fromkeys(DATED_MODELS, DATED_REASON)
    marts = _tables(settings.warehouse_path, "marts")
    assert ALWAYS_MODELS - {"quality_batch_drift"} <= marts
    assert not DATED_MODELS & marts
    # data tests, unit tests and the reconciliation tests all ran
    kinds = {t["kind"] for t in result.tests}
    assert kinds == {"data", "unit"}
    names = {t["name"] for t in result.tests}
    assert {"assert_purchase_counts_reconcile", "assert_purchase_amounts_reconcile",
            "assert_batch_rows_reconcile", "int_purchases_enriched_age_bands"} <= names
    assert len(result.tests) > 100
    assert all(t["severity"] in ("error", "warn") for t in result.tests)
    # the repository stays clean: dbt wrote under <home>/.dbt
    assert (settings.home / ".dbt" / "target" / "manifest.json").exists()
    assert "PURCHASE_PATTERNS_WAREHOUSE" not in os.environ


def test_kaggle_sales_by_season_category_and_region(kaggle):
    settings, _, _, csv = kaggle
    db = settings.warehouse_path
    amount = '"Purchase Amount (USD)"'
    src = f"read_csv('{csv}')"
    expected = {s: (n, Decimal(r)) for s, n, r in duckdb.execute(
        f"select Season, count(*), sum({amount}) from {src} group by 1").fetchall()}
    got = {s: (n, r) for s, n, r in query(
        db, "select season, n_purchases, revenue from marts.agg_sales_by_season")}
    assert got == expected
    assert scalar(db, "select sum(share_of_revenue) from marts.agg_sales_by_season") == \
        pytest.approx(1.0)

    expected = {c: (n, Decimal(r), pytest.approx(m)) for c, n, r, m in duckdb.execute(
        f"select Category, count(*), sum({amount}), avg({amount}) from {src} group by 1"
    ).fetchall()}
    got = {c: (n, r, m) for c, n, r, m in query(
        db, "select category_name, n_purchases, revenue, avg_spend "
            "from marts.agg_category_performance")}
    assert got == expected

    by_region: dict[str, Decimal] = {}
    for state, revenue in duckdb.execute(
            f"select Location, sum({amount}) from {src} group by 1").fetchall():
        region = US_STATES[state][1]
        by_region[region] = by_region.get(region, Decimal(0)) + Decimal(revenue)
    got = dict(query(db, "select census_region, revenue from marts.agg_sales_by_region"))
    assert got == by_region
    ky = query(db, "select state_code, census_region, census_division, population "
                   "from marts.agg_sales_by_state where state_name = 'Kentucky'")
    assert ky == [("KY", "South", "East South Central", 4505836)]
    assert scalar(db, "select count(*) from marts.agg_sales_by_state") == 50


def test_kaggle_customers_products_and_features(kaggle):
    settings, _, _, csv = kaggle
    db = settings.warehouse_path
    src = f"read_csv('{csv}')"
    assert scalar(db, "select count(*) from marts.dim_customers") == 3900
    assert scalar(db, "select count(*) from marts.fct_purchases") == 3900
    # age bands, computed here from the raw ages
    bands = {"<25": 0, "25-34": 0, "35-44": 0, "45-54": 0, "55-64": 0, "65+": 0}
    for (age,) in duckdb.execute(f"select Age from {src}").fetchall():
        key = ("<25" if age < 25 else "25-34" if age < 35 else "35-44" if age < 45
               else "45-54" if age < 55 else "55-64" if age < 65 else "65+")
        bands[key] += 1
    got = dict(query(db, "select age_band, count(*) from marts.dim_customers group by 1"))
    assert got == bands
    # stated frequency -> purchases per year, as in schema.FREQUENCY_PER_YEAR
    row = duckdb.execute(f'select "Frequency of Purchases" from {src} '
                         'where "Customer ID" = 1').fetchone()
    assert scalar(db, "select expected_purchases_per_year from marts.dim_customers "
                      "where customer_id = '1'") == FREQUENCY_PER_YEAR[row[0]]
    # products: one per item, with a stable key (hash of item and category)
    items = duckdb.execute(f'select count(distinct "Item Purchased") from {src}').fetchone()[0]
    assert scalar(db, "select count(*) from marts.dim_products") == items == 25
    assert scalar(db, "select count(*) from marts.dim_products "
                      "where product_id <> md5(item_name || '|' || category_name)") == 0
    assert scalar(db, "select count(*) from marts.fct_purchases f left join marts.dim_products "
                      "p using (product_id) where p.product_id is null") == 0
    # one purchase per customer, no dates: frequency 0, recency and T unknown
    assert query(db, "select min(frequency), max(frequency), count(recency_days), "
                     "count(t_days), count(stated_purchases_per_year) "
                     "from marts.customer_features") == [(0, 0, 0, 0, 3900)]
    # promotion effects: discount applied vs not, from the raw file
    expected = {("Yes" if v else "No"): (n, pytest.approx(m)) for v, n, m in duckdb.execute(
        f'select "Discount Applied", count(*), avg("Purchase Amount (USD)") from {src} '
        'group by 1').fetchall()}
    got = {v: (n, m) for v, n, m in query(
        db, "select lever_value, n_purchases, avg_spend from marts.agg_promotion_effects "
            "where promotion_lever = 'discount_applied'")}
    assert got == expected


# -- CDNOW (dated log) --------------------------------------------------------------------------


def test_cdnow_customers_revenue_and_calendar(cdnow):
    settings, _, result, txt = cdnow
    assert result.success, result.message
    assert result.models_skipped == []
    assert ALWAYS_MODELS | DATED_MODELS <= set(result.models_built)
    db = settings.warehouse_path
    con = duckdb.connect()
    _cdnow_raw(con, txt)
    n_rows, n_customers, revenue = con.execute(
        "select count(*), count(distinct customer_id), sum(amount) from cd").fetchone()
    assert (n_rows, n_customers) == (69659, 23570)
    assert scalar(db, "select count(*) from marts.dim_customers") == n_customers
    assert scalar(db, "select count(*) from marts.fct_purchases") == n_rows
    assert scalar(db, "select sum(amount) from marts.fct_purchases") == revenue
    assert scalar(db, "select sum(total_spend) from marts.dim_customers") == revenue
    monthly = dict(con.execute(
        "select date_trunc('month', purchase_date)::date, sum(amount) from cd group by 1"
    ).fetchall())
    assert dict(query(db, "select purchase_month, revenue from marts.agg_sales_by_month")) \
        == monthly
    assert scalar(db, "select sum(n_purchases) from marts.agg_sales_by_week") == n_rows
    weekdays = dict(con.execute("select isodow(purchase_date), count(*) from cd group by 1")
                    .fetchall())
    assert dict(query(db, "select day_of_week, n_purchases from marts.agg_sales_by_weekday")) \
        == weekdays
    # without item/state data everything falls in one Unknown bucket
    assert query(db, "select category_name, n_purchases from marts.agg_category_performance") \
        == [("Unknown", n_rows)]
    assert query(db, "select census_region, n_customers from marts.agg_sales_by_region") \
        == [("Unknown", n_customers)]


def test_cdnow_cohorts_and_customer_features(cdnow):
    settings, _, _, txt = cdnow
    db = settings.warehouse_path
    con = duckdb.connect()
    _cdnow_raw(con, txt)
    con.execute("""
        create temp table firsts as
        select customer_id, min(purchase_date) as first_date, max(purchase_date) as last_date,
               count(distinct purchase_date) as n_days, sum(amount) as spend
        from cd group by 1""")
    cohorts = dict(con.execute(
        "select date_trunc('month', first_date)::date, count(*) from firsts group by 1"
    ).fetchall())
    got = dict(query(db, "select cohort_month, cohort_size from marts.agg_cohort_retention "
                         "where months_since_first_purchase = 0"))
    assert got == cohorts
    jan = min(cohorts)
    assert len(cohorts) == 3 and jan.isoformat() == "1997-01-01"  # CDNOW: Q1 1997 cohorts
    # customers of the January 1997 cohort who bought again in February 1997
    returned = con.execute("""
        select count(distinct cd.customer_id) from cd join firsts using (customer_id)
        where date_trunc('month', first_date) = date '1997-01-01'
          and date_trunc('month', purchase_date) = date '1997-02-01'""").fetchone()[0]
    got = query(db, "select n_active_customers, retention_rate, cohort_size "
                    "from marts.agg_cohort_retention where cohort_month = ? "
                    "and months_since_first_purchase = 1", [jan])
    assert got == [(returned, pytest.approx(returned / cohorts[jan]), cohorts[jan])]
    # recency / frequency / T as of the last date in the data
    end = con.execute("select max(purchase_date) from cd").fetchone()[0]
    expected = {
        cid: (n_days - 1, (last - first).days, (end - first).days, spend)
        for cid, first, last, n_days, spend in con.execute(
            "select * from firsts where customer_id in ('00001', '00004', '14048', '23570')"
        ).fetchall()
    }
    got = {
        cid: (f, r, t, s) for cid, f, r, t, s in query(
            db, "select customer_id, frequency, recency_days, t_days, total_spend "
                "from marts.customer_features "
                "where customer_id in ('00001', '00004', '14048', '23570')")
    }
    assert got == expected
    assert scalar(db, "select sum(frequency) from marts.customer_features") == \
        con.execute("select sum(n_days - 1) from firsts").fetchone()[0]
    assert scalar(db, "select max(as_of_date) from marts.customer_features") == end


def test_quality_results_report_and_docs(cdnow):
    settings, batches, result, _ = cdnow
    con = warehouse.connect(settings)
    try:
        n = write_quality_results(con, "r1", [b.as_dict() for b in batches], result)
        html_path, json_path = write_quality_report(con, "r1", settings.reports_dir / "r1")
    finally:
        con.close()
    assert n == len(result.tests) + 2
    db = settings.warehouse_path
    rows = query(db, "select source, status, count(*) from quality.dq_results "
                     "where run_id = 'r1' group by all order by all")
    assert ("ingest", "pass", 2) in rows
    assert {s for _, s, _ in rows} <= {"pass", "warn"}
    assert scalar(db, "select count(*) from quality.dq_results where source = 'dbt'") == \
        len(result.tests)
    page = html_path.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "assert_batch_rows_reconcile" in page
    report = json.loads(json_path.read_text(encoding="utf-8"))
    assert report["passed"] is True and len(report["checks"]) == n
    # dbt's documentation site as one page
    index = docs(settings, settings.reports_dir / "r1")
    assert index.name == "index.html" and index.stat().st_size > 100_000
    assert (index.parent / "catalog.json").exists()


# -- broken input -------------------------------------------------------------------------------


def test_duplicated_purchase_fails_key_and_reconciliation_checks(tmp_path):
    csv = _data_dir() / "shopping_trends.csv"
    settings, batches = _load(tmp_path / "home", csv)
    con = warehouse.connect(settings)
    try:  # the same purchase line twice, behind the loader's back
        con.execute("insert into raw.purchases select * from raw.purchases where source_line = 2")
    finally:
        con.close()
    result = run_transform(settings, "bad", dated=False)
    assert result.success is False
    failed = {t["name"]: t for t in result.failed_checks}
    assert {"unique_stg_warehouse__purchases_purchase_id", "assert_batch_rows_reconcile"} \
        <= set(failed)
    assert all(t["severity"] == "error" and t["status"] == "fail" for t in failed.values())
    assert failed["assert_batch_rows_reconcile"]["failures"] == 1
    assert "error-severity check(s) failed" in result.message
    assert "Traceback" not in result.message
    # marts downstream of the failing key test are not built, and say why
    skipped = dict(result.models_skipped)
    assert skipped.get("fct_purchases") == UPSTREAM_REASON
    assert "fct_purchases" not in result.models_built

    con = warehouse.connect(settings)
    try:
        write_quality_results(con, "bad", [b.as_dict() for b in batches], result)
        write_quality_report(con, "bad", settings.reports_dir / "bad")
    finally:
        con.close()
    sample, status, severity = query(
        settings.warehouse_path,
        "select sample, status, severity from quality.dq_results "
        "where run_id = 'bad' and check_name = 'assert_batch_rows_reconcile'")[0]
    assert (status, severity) == ("fail", "error")
    [row] = json.loads(sample)
    assert (row["rows_loaded"], row["rows_in_warehouse"]) == (3900, 3901)
    page = (settings.reports_dir / "bad" / "data_quality.html").read_text(encoding="utf-8")
    assert 'class="badge fail"' in page


def test_second_batch_updates_customers_and_warns_about_drift(tmp_path):
    csv = _data_dir() / "shopping_trends.csv"
    # three customers of the snapshot again, in a later file, older and living elsewhere
    header, *rows = csv.read_text(encoding="utf-8").splitlines()[:4]
    cols = header.split(",")
    age, state = cols.index("Age"), cols.index("Location")
    moved = []
    for line in rows:
        fields = line.split(",")
        fields[age], fields[state] = str(int(fields[age]) + 1), "Vermont"
        moved.append(",".join(fields))
    update = tmp_path / "update.csv"
    update.write_text("\n".join([header, *moved]) + "\n", encoding="utf-8")
    settings, batches = _load(tmp_path / "home", csv, update)
    assert [b.rows_loaded for b in batches] == [3900, 3]
    result = run_transform(settings, "r2", dated=False)
    assert result.success, result.message  # warnings do not fail the build
    warned = {t["name"] for t in result.warnings}
    assert "drift_latest_batch_row_count_ratio" in warned
    assert all(t["severity"] == "warn" for t in result.warnings)
    db = settings.warehouse_path
    assert query(db, "select age, state_name, census_division, n_purchases "
                     "from marts.dim_customers where customer_id = '1'") == \
        [(56, "Vermont", "New England", 2)]
    assert scalar(db, "select row_count_ratio from quality.quality_batch_drift "
                      "where is_latest_batch") == pytest.approx(3 / 3900)


def test_missing_project_is_reported_not_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("PURCHASE_PATTERNS_DBT_PROJECT_DIR", str(tmp_path / "nowhere"))
    result = run_transform(load_settings(home=tmp_path / "home"), "x", dated=True)
    assert result.success is False
    assert "dbt project not found" in result.message


def test_summarise_keeps_one_short_line():
    text = ("\x1b[31mCompilation Error in model x (models/x.sql)\x1b[0m\n"
            "   'foo' is undefined\n\n  compiled code at target/x.sql\n" + "y" * 500)
    out = summarise(text)
    assert out.startswith("Compilation Error in model x (models/x.sql) 'foo' is undefined")
    assert "\n" not in out and len(out) <= 300 and "\x1b" not in out



def test_builds_when_duckdb_spills_to_disk(tmp_path):
    """With a memory limit the data does not fit in, DuckDB spills to the spill folder; dbt's
    connections must not set that folder again afterwards (DuckDB refuses once it has been
    used). Seen first at 10M rows with the default limit; here 100k rows in 100 MB, through
    the command, whose own connections share DuckDB's instance with dbt's."""
    import subprocess
    import sys

    from purchase_patterns.generate import generate

    data = tmp_path / "purchases.csv"
    generate(data, 20_000, seed=3)
    home = tmp_path / "home"
    cli = str(Path(sys.executable).with_name("purchase-patterns"))
    env = {**os.environ, "PURCHASE_PATTERNS_DUCKDB_MEMORY_LIMIT": "100MB"}
    for args in (["ingest", "--input", str(data)], ["transform"]):
        done = subprocess.run([cli, "--home", str(home), *args], env=env, capture_output=True,
                              text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr
    db = home / "warehouse.duckdb"
    assert scalar(db, "select count(*) from marts.fct_purchases") == \
        scalar(db, "select count(*) from raw.purchases") > 90_000


def test_dbt_runs_several_nodes_at_once_on_small_data_only(built_home):
    from purchase_patterns.settings import load_settings
    from purchase_patterns.transform import PARALLEL_MAX_LINES, PARALLEL_THREADS, dbt_threads

    s = load_settings()
    assert dbt_threads(s, 3_900) == PARALLEL_THREADS > 1
    assert dbt_threads(s, PARALLEL_MAX_LINES + 1) == 1
    assert dbt_threads(s, None) == 1
    assert dbt_threads(load_settings(dbt_threads=2), 10_000_000) == 2
    # the pipeline's transform stage passes the warehouse's lines: dbt says what it used
    log = (built_home("kaggle") / ".dbt" / "logs" / "dbt.log").read_text(encoding="utf-8")
    assert f"Concurrency: {PARALLEL_THREADS} threads" in log

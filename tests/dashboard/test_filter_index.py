"""The filter index (purchase_patterns.filter_index) gives the same figures as the dashboard's
SQL for every selection it supports, on dated generated data and the undated Kaggle file, and
declines what it cannot answer exactly."""

from __future__ import annotations

import random
from datetime import date

import duckdb
import pandas as pd
import pytest

from purchase_patterns import filter_index
from purchase_patterns.datastore import open_store
from purchase_patterns.filters import Filters
from purchase_patterns.publish import current
from purchase_patterns.settings import load_settings

import data

#: dated with multi-category orders and segments; undated (every line an order). The same
#: published homes as the other dashboard tests (built once per test worker).
DATASETS = [("synthetic", True), ("kaggle", True)]


@pytest.fixture(scope="module", params=DATASETS, ids=lambda p: p[0])
def indexed(request, published_home):
    """(store on the published copy, its filter index, filter options)."""
    name, analytics = request.param
    home = published_home(name, analytics=analytics)
    path = current(load_settings(home=home))
    result = filter_index.build(path)
    assert result.index is not None, result.reason
    store = open_store(load_settings(home=home), read_only=True, path=path)
    options = data.filter_options.uncached(store, analytics)
    yield store, result.index, options
    result.index.close()
    store.close()


def _selections(options: dict, n: int, seed: int) -> list[Filters]:
    """``n`` random selections over the values the data offers, whole months for dates."""
    rng = random.Random(seed)
    out = []
    keys = ["season", "category", "state", "census_region", "gender", "age_band", "segment"]
    for _ in range(n):
        picked: dict = {}
        for key in rng.sample(keys, rng.randint(1, 3)):
            values = options[key]
            if values:
                picked[key] = tuple(rng.sample(values, rng.randint(1, min(3, len(values)))))
        if rng.random() < 0.3 and len(options["subscription"]) == 2:
            picked["subscription"] = rng.random() < 0.5
        if options["date_from"] and rng.random() < 0.5:
            months = pd.date_range(options["date_from"], options["date_to"], freq="MS")
            if len(months) > 2:
                a, b = sorted(rng.sample(range(len(months)), 2))
                picked["date_from"] = months[a].date()
                picked["date_to"] = (months[b] + pd.offsets.MonthEnd(0)).date()
        out.append(Filters(**picked))
    return out


def test_index_equals_sql_for_random_selections(indexed):
    store, index, options = indexed
    selections = [Filters(), Filters(category=tuple(options["category"][:1])),
                  *_selections(options, 40, seed=3)]
    with_purchases = 0
    for f in selections:
        assert index.supports(f)
        sql = (data._kpis_from_purchases(store, f) if f.on_purchases
               else data._kpis_from_customers(store, f))
        got = index.kpis(f)
        label = f.describe()
        sql = {k: 0 if pd.isna(v) else v for k, v in sql.items()}  # sums of no rows
        assert got["customers"] == sql["customers"], label
        assert got["orders"] == sql["orders"], label
        assert got["repeat_customers"] == sql["repeat_customers"], label
        assert got["revenue"] == pytest.approx(float(sql["revenue"]), abs=0.005), label
        with_purchases += bool(f.on_purchases and got["customers"])

        by_category_sql = data._sales_by(
            store, f, {"season": "coalesce(f.season, 'Unknown')", "category": "p.category_name"},
            products=True, distinct_customers=False)
        keys = ["season", "category"]
        pd.testing.assert_frame_equal(
            index.sales_by_season_and_category(f).sort_values(keys).reset_index(drop=True),
            by_category_sql[[*keys, "n_purchases", "units", "revenue"]].sort_values(keys)
            .reset_index(drop=True), check_dtype=False, obj=str(label))
        if f.is_empty:
            continue
        season_sql = data._sales_by(store, f, {"season": "coalesce(f.season, 'Unknown')"})
        season_idx = index.sales_by_season(f)
        cols = ["season", "n_purchases", "n_customers", "units", "revenue"]
        pd.testing.assert_frame_equal(
            season_idx[cols].sort_values("season").reset_index(drop=True),
            season_sql[cols].sort_values("season").reset_index(drop=True),
            check_dtype=False, obj=str(label))
        month_sql = data._sales_by(store, f, {"period": "f.purchase_month"},
                                   distinct_customers=False)
        month_sql = month_sql[month_sql["period"].notna()]
        month_idx = index.sales_by_month(f)
        for df in (month_sql, month_idx):
            df["period"] = pd.to_datetime(df["period"])
        cols = ["period", "n_purchases", "units", "revenue"]
        pd.testing.assert_frame_equal(
            month_idx[cols].sort_values("period").reset_index(drop=True),
            month_sql[cols].sort_values("period").reset_index(drop=True),
            check_dtype=False, obj=str(label))
    assert with_purchases >= 10  # the comparison reached non-empty filtered answers


def test_repeat_customers_count_orders_not_lines(indexed):
    """A customer with two lines of the selected categories on one day has one order: the
    index must not call them a repeat customer (the order sits in two cube rows)."""
    store, index, options = indexed
    f = Filters(category=tuple(options["category"]))
    sql = data._kpis_from_purchases(store, f)
    got = index.kpis(f)
    assert got["repeat_customers"] == int(sql["repeat_customers"])
    assert got["orders"] == int(sql["orders"])


def _tiny_warehouse(path, lines: list[tuple], categories: list[str]) -> None:
    """A warehouse file holding just the marts the index reads."""
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("create table marts.dim_products as select * from (values "
                + ", ".join(f"('p{i}', '{c}')" for i, c in enumerate(categories))
                + ") as t(product_id, category_name)")
    con.execute("""create table marts.dim_customers (customer_id varchar, gender varchar,
        age_band varchar, state_name varchar, census_region varchar, has_subscription bool)""")
    con.execute("insert into marts.dim_customers values ('c1', 'Female', '25-34', 'Texas', "
                "'South', true)")
    con.execute("""create table marts.fct_purchases (purchase_id varchar, customer_id varchar,
        product_id varchar, purchase_date date, purchase_month date, season varchar,
        quantity integer, amount decimal(12, 2))""")
    con.executemany("insert into marts.fct_purchases values (?, 'c1', ?, ?, ?, ?, 1, 10)",
                    lines)
    con.close()


def test_supports_whole_months_only(tmp_path):
    day = date(2024, 3, 5)
    _tiny_warehouse(tmp_path / "w.duckdb", [("l1", "p0", day, day.replace(day=1), "Spring")],
                    ["A"])
    index = filter_index.build(tmp_path / "w.duckdb").index
    try:
        assert index.supports(Filters(date_from=date(2024, 3, 1), date_to=date(2024, 4, 30)))
        assert index.supports(Filters(date_to=date(2024, 2, 29)))
        assert not index.supports(Filters(date_from=date(2024, 3, 2)))
        assert not index.supports(Filters(date_to=date(2023, 2, 27)))
        assert index.kpis(Filters(date_from=date(2024, 3, 1)))["customers"] == 1
        assert index.kpis(Filters(date_to=date(2024, 2, 29)))["customers"] == 0
    finally:
        index.close()


def test_declines_orders_spanning_seasons(tmp_path):
    day = date(2024, 3, 1)
    _tiny_warehouse(tmp_path / "w.duckdb", [("l1", "p0", day, day, "Winter"),
                                            ("l2", "p0", day, day, "Spring")], ["A"])
    result = filter_index.build(tmp_path / "w.duckdb")
    assert result.index is None
    assert "different seasons" in result.reason


def test_declines_too_many_categories(tmp_path):
    day = date(2024, 3, 1)
    cats = [f"cat{i:02d}" for i in range(filter_index.MAX_CATEGORIES + 1)]
    _tiny_warehouse(tmp_path / "w.duckdb", [("l1", "p0", day, day, "Spring")], cats)
    result = filter_index.build(tmp_path / "w.duckdb")
    assert result.index is None
    assert "63 product categories" in result.reason


def test_dashboard_queries_answer_from_the_index_once_built(published_home, monkeypatch):
    """``data.kpis`` and the monthly series take the index's answer when it is ready (the
    same figures as SQL), and SQL's for a date range that starts inside a month."""
    home = published_home("synthetic", analytics=True)
    monkeypatch.setenv("PURCHASE_PATTERNS_HOME", str(home))
    monkeypatch.setenv("PURCHASE_PATTERNS_DASHBOARD__FILTER_INDEX", "blocking")
    settings = load_settings(home=home)
    key = data.source(settings).key
    slot = data.index_slot(key)
    assert slot.state == "ready" and slot.index is not None, slot.detail
    store = open_store(settings, read_only=True, path=current(settings))
    try:
        answered = []
        real_kpis = slot.index.kpis
        monkeypatch.setattr(slot.index, "kpis", lambda f: answered.append(f) or real_kpis(f))
        inside = Filters(category=("Footwear",), date_from=date(2024, 3, 15))
        for f in (Filters(category=("Footwear",), season=("Winter",)), inside):
            assert data.kpis(key, f) == data.kpis.uncached(store, f)
            got = data.sales_by_period(key, f, "month")
            pd.testing.assert_frame_equal(got, data.sales_by_period.uncached(store, f, "month"),
                                          check_dtype=False)
        assert answered == [Filters(category=("Footwear",), season=("Winter",))]
    finally:
        store.close()

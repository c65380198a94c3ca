"""The data-access module: KPIs and series equal independent SQL on the real warehouses,
the marts' fast path equals the general path, and the dashboard reads the published copy
(never the working warehouse) and picks up a new publish."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from purchase_patterns.datastore import open_store
from purchase_patterns.filters import Filters
from purchase_patterns.publish import current, publish
from purchase_patterns.settings import load_settings

import data


def _sql(s, sql):
    """Independent SQL, straight on the store's DuckDB connection (a second connection to
    the same file with another configuration is refused in one process)."""
    return s.con.execute(sql).fetchone()


@pytest.fixture(scope="module")
def synthetic(published_home):
    home = published_home("synthetic", analytics=True)
    settings = load_settings(home=home)
    db = current(settings)
    s = open_store(settings, read_only=True, path=db)
    yield s
    s.close()


FILTERS = [
    Filters(),
    Filters(gender=("Female",), age_band=("25-34", "35-44")),
    Filters(season=("Winter",), census_region=("South",)),
    Filters(category=("Footwear",), subscription=True),
    Filters(segment=("Champions",), state=("California", "Texas")),
]


@pytest.mark.parametrize("f", FILTERS, ids=lambda f: "+".join(f.describe()) or "all")
def test_kpis_equal_independent_sql(synthetic, f):
    s = synthetic
    conditions = ["true"]
    if f.gender:
        conditions.append("c.gender = 'Female' and c.age_band in ('25-34', '35-44')")
    if f.season:
        conditions.append("f.season = 'Winter' and c.census_region = 'South'")
    if f.category:
        conditions.append("p.category_name = 'Footwear' and c.has_subscription")
    if f.segment:
        conditions.append("s.segment = 'Champions' and c.state_name in ('California', 'Texas')")
    customers, revenue, orders = _sql(s, f"""
        select count(distinct f.customer_id), sum(f.amount),
               count(distinct (f.customer_id, f.purchase_date))
        from marts.fct_purchases f
        join marts.dim_products p on p.product_id = f.product_id
        join marts.dim_customers c on c.customer_id = f.customer_id
        left join analytics.customer_segments s on s.customer_id = f.customer_id
        where {' and '.join(conditions)}""")
    k = data.kpis.uncached(s, f)
    assert customers > 0
    assert k["customers"] == customers
    assert k["revenue"] == pytest.approx(float(revenue))
    assert k["orders"] == orders
    assert k["aov"] == pytest.approx(float(revenue) / orders)


def test_mart_fast_path_equals_the_general_path(synthetic):
    """Unfiltered pages read the marts; filtered ones aggregate the facts. Both must agree,
    so the numbers do not jump when a filter is set and cleared."""
    s = synthetic
    everything = Filters(date_from=_sql(s, "select min(purchase_date) from "
                                                      "marts.fct_purchases")[0])
    assert not everything.is_empty
    for fn, extra in [(data.sales_by_season, ()), (data.sales_by_period, ("month",)),
                      (data.sales_by_period, ("week",)), (data.category_performance, ()),
                      (data.item_performance, ())]:
        fast = fn.uncached(s, Filters(), *extra)
        slow = fn.uncached(s, everything, *extra)
        assert list(fast.columns) == list(slow.columns), fn.__name__
        cols = [c for c in ("n_purchases", "n_customers", "units", "revenue") if c in fast]
        assert len(fast) == len(slow) > 0, fn.__name__
        for col in cols:
            assert fast[col].astype(float).tolist() == pytest.approx(
                slow[col].astype(float).tolist()), (fn.__name__, col)
    fast = data.kpis.uncached(s, Filters())
    slow = data.kpis.uncached(s, everything)
    assert fast == pytest.approx(slow)


def test_geography_and_segments(synthetic):
    s = synthetic
    states = data.sales_by_state.uncached(s, Filters(), True)
    revenue, orders = _sql(s, """
        select sum(amount), count(distinct (customer_id, purchase_date))
        from marts.fct_purchases where state_name is not null""")
    assert states["revenue"].sum() == pytest.approx(float(revenue))
    assert states["n_orders"].sum() == orders  # a customer keeps one state here
    assert states["aov"].tolist() == pytest.approx(
        (states["revenue"] / states["n_orders"]).tolist())
    assert states["state_code"].notna().all()
    quick = data.sales_by_state.uncached(s, Filters(), False)
    assert "n_orders" not in quick and quick["n_customers"].tolist() == \
        states["n_customers"].tolist()
    regions = data.sales_by_region.uncached(s, Filters(gender=("Male",)), False)
    assert regions["n_customers"].sum() == _sql(
        s, "select count(*) from marts.dim_customers where gender = 'Male'")[0]
    seg = data.segment_table.uncached(s, Filters(), True)
    expected = dict(s.con.execute(
        "select segment, count(*) from analytics.customer_segments group by 1").fetchall())
    assert dict(zip(seg["segment"], seg["customers"], strict=True)) == expected
    assert seg["share_of_revenue"].sum() == pytest.approx(1.0)
    customers, total = data.segment_customers.uncached(s, Filters(), "Champions", True, 10)
    assert total == expected["Champions"] and len(customers) == 10
    assert (customers["segment"] == "Champions").all()
    hist = data.clv_histogram.uncached(s, Filters(), 20)
    assert hist["customers"].sum() == _sql(
        s, "select count(clv) from analytics.customer_predictions")[0]


def test_hostile_values_are_only_values(synthetic):
    s = synthetic
    hostile = "'; drop table marts.fct_purchases; --"
    assert data.kpis.uncached(s, Filters(state=(hostile,)))["customers"] == 0
    assert data.customer_profile.uncached(s, hostile, True, True) is None
    assert data.customer_purchases.uncached(s, hostile, 10).empty
    assert data.segment_customers.uncached(s, Filters(), hostile, True, 10)[1] == 0
    assert _sql(s, "select count(*) from marts.fct_purchases")[0] > 0


def test_reads_the_published_copy_while_a_run_holds_the_warehouse(published_home, tmp_path,
                                                                 monkeypatch):
    """A run holding the working warehouse does not disturb the dashboard; a new publish
    is picked up by the next rerun, through a new source key."""
    home = tmp_path / "home"
    shutil.copytree(published_home("kaggle"), home)
    monkeypatch.setenv("PURCHASE_PATTERNS_HOME", str(home))  # as the app's process has it
    settings = load_settings(home=home)
    first = data.source(settings)
    assert first is not None and "published" in first.label
    writer = duckdb.connect(str(settings.warehouse_path))  # a run in progress
    try:
        writer.execute("delete from marts.fct_purchases where customer_id <> '1'")
        assert data.kpis(first.key, Filters())["customers"] == 3900
    finally:
        writer.close()
    # the run finishes: a smaller warehouse is published
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("delete from marts.customer_features where customer_id not in ('1', '2')")
    con.close()
    publish(settings, "second-run")
    second = data.source(settings)
    assert second.key != first.key
    assert data.kpis(second.key, Filters())["customers"] == 2
    assert data.kpis(first.key, Filters())["customers"] == 3900  # cached, immutable copy

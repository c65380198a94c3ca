"""An in-memory index that answers the dashboard's filtered headline figures exactly, fast.

Why it exists
    With a purchase filter set (category, season, dates), the Overview's customers, orders
    and repeat rate are distinct counts over purchase lines: on a 10M-line warehouse DuckDB
    needs 0.5-0.8 s on two cores for them, even on the best table layout (bench/
    dashboard_floor.py). A filter change should re-render in <= 300 ms (issue 9). The index
    answers the same figures, to the unit, in tens of milliseconds.

What it holds (built once per published warehouse, in its own in-memory DuckDB)
    - **cells**: every order (purchase occasion: a customer's purchase day, or a line without
      a date) falls in exactly one cell = (purchase month, season, the set of categories the
      order holds, as a bit mask). For each cell, the customers with one order there and those
      with two or more, as compressed bitmaps (Roaring) of dense customer numbers;
    - **customer bitmaps** per value of each customer filter (gender, age band, state, census
      region, subscription, segment);
    - **cube**: lines, units, revenue and orders summed by month, season, category, order mask
      and the customer filter columns (about 1M rows for 10M purchase lines).

How a selection is answered
    The purchase filters pick cells (month in range, season in the set, mask sharing a bit
    with the selected categories) and the customer filters a customer bitmap. Customers in
    scope are the union of the picked cells' customers within that bitmap; a customer is a
    repeat customer when two picked cells hold them (distinct cells are distinct orders) or
    one picked cell holds two of their orders. Revenue, lines and the monthly series are sums
    over the cube. Orders: an order with several selected categories sits in one cube row per
    category; it is counted in the row of its lowest selected category only.

What it does not answer (:meth:`FilterIndex.supports` says False; callers run the SQL of
``dashboard/data.py`` instead, which gives the same figures)
    - date filters that do not cover whole months (a day picked inside a month);
    - warehouses where one order holds lines of different seasons, or with more than 62
      product categories (the build returns None and says why).

The figures equal the SQL definitions of ``dashboard/data.py`` (tests/test_filter_index.py
compares them on the Kaggle file, CDNOW and generated data for many selections).
"""

from __future__ import annotations

import calendar
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from pyroaring import BitMap

from .datastore import DuckDBStore
from .filters import CUSTOMER_COLUMNS, Filters, _in

#: A bigint mask holds one bit per category (bit 63 is the sign).
MAX_CATEGORIES = 62
#: Customer filters and the index's column for each.
CUSTOMER_FIELDS = {key: column.split(".", 1)[1] for key, column in CUSTOMER_COLUMNS.items()}
CUSTOMER_FIELDS.update({"subscription": "has_subscription", "segment": "segment"})

# -- build ---------------------------------------------------------------------------------------

_CATEGORIES = """
create table categories as
select category_name, cast(row_number() over (order by category_name) - 1 as tinyint) as cat_id
from (select distinct category_name from pub.marts.dim_products) as d
"""
_CUSTOMERS = """
create table customers as
select cast(row_number() over (order by c.customer_id) - 1 as integer) as ck, c.customer_id,
       c.gender, c.age_band, c.state_name, c.census_region, c.has_subscription,
       {segment} as segment
from pub.marts.dim_customers as c
{segment_join}
"""
#: One row per order and category (and season, to detect orders that span seasons).
_ORDER_CATEGORIES = """
create temp table order_categories as
with lines as (
    select c.ck, f.purchase_date,
           case when f.purchase_date is null then f.purchase_id end as undated_line,
           f.purchase_month as month, f.season, p.cat_id, f.quantity, f.amount
    from pub.marts.fct_purchases as f
    inner join (select d.product_id, k.cat_id from pub.marts.dim_products as d
                inner join categories as k on k.category_name is not distinct from
                d.category_name) as p on p.product_id = f.product_id
    inner join customers as c on c.customer_id = f.customer_id
),
grouped as (
    select ck, purchase_date, undated_line, month, season, cat_id,
           count(*) as lines, sum(quantity) as units, sum(amount) as revenue
    from lines
    group by ck, purchase_date, undated_line, month, season, cat_id
)
select *,
       bit_or(cast(1 as bigint) << cat_id) over w as order_mask,
       count(*) over w as order_rows,
       min(coalesce(season, '')) over w <> max(coalesce(season, '')) over w as mixed_season
from grouped
window w as (partition by ck, purchase_date, undated_line)
"""
_CUBE = """
create table cube as
select o.month, o.season, o.cat_id, o.order_mask, c.gender, c.age_band, c.state_name,
       c.census_region, c.has_subscription, c.segment,
       cast(sum(o.lines) as bigint) as lines, cast(sum(o.units) as bigint) as units,
       sum(o.revenue) as revenue, cast(count(*) as bigint) as orders
from order_categories as o
inner join customers as c on c.ck = o.ck
group by all
"""
#: Each order once (in the row of its lowest category), with its cell.
_ORDERS = """
create temp table orders as
select month, season, order_mask, ck from order_categories
where (order_mask & ((cast(1 as bigint) << cat_id) - 1)) = 0
"""
_CELL_KEYS = """
create temp table cell_keys as
select cast(row_number() over (order by month, season, order_mask) - 1 as integer) as cell,
       month, season, order_mask
from (select distinct month, season, order_mask from orders) as d
"""
#: Orders per cell and customer.
_CELL_CUSTOMERS = """
select k.cell, o.ck, cast(count(*) as integer) as n
from orders as o
inner join cell_keys as k on k.month is not distinct from o.month
    and k.season is not distinct from o.season and k.order_mask = o.order_mask
group by all
order by k.cell, o.ck
"""


@dataclass(frozen=True)
class Cell:
    month: date | None
    season: str | None
    mask: int
    once: BitMap  # customers with at least one order in the cell
    twice: BitMap  # customers with two or more


@dataclass
class BuildResult:
    """The index, or None and the reason it was not built; seconds the build took."""

    index: FilterIndex | None
    reason: str
    seconds: float


def build(path: Path, *, memory_limit: str = "2GB", threads: int = 2) -> BuildResult:
    """Index the published DuckDB warehouse at ``path`` (opened read-only, then detached)."""
    t0 = time.perf_counter()
    con = duckdb.connect(config={"memory_limit": memory_limit, "threads": threads})
    try:
        con.execute("set enable_progress_bar = false")
        con.execute("attach ? as pub (read_only)", [str(path)])
        has_segments = bool(con.execute(
            "select count(*) from information_schema.tables where table_catalog = 'pub' "
            "and table_schema = 'analytics' and table_name = 'customer_segments'").fetchone()[0])
        con.execute(_CATEGORIES)
        categories = dict(con.execute(
            "select category_name, cat_id from categories").fetchall())
        if len(categories) > MAX_CATEGORIES:
            return BuildResult(None, f"{len(categories)} product categories (the index holds "
                               f"at most {MAX_CATEGORIES})", time.perf_counter() - t0)
        con.execute(_CUSTOMERS.format(
            segment="s.segment" if has_segments else "cast(null as varchar)",
            segment_join=("left join pub.analytics.customer_segments as s "
                          "on s.customer_id = c.customer_id") if has_segments else ""))
        con.execute(_ORDER_CATEGORIES)
        if con.execute("select bool_or(mixed_season) from order_categories").fetchone()[0]:
            return BuildResult(None, "some orders hold lines of different seasons",
                               time.perf_counter() - t0)
        con.execute(_CUBE)
        con.execute(_ORDERS)
        con.execute(_CELL_KEYS)
        cells = _cells(con.execute("select month, season, order_mask from cell_keys "
                                   "order by cell").fetchall(),
                       con.execute(_CELL_CUSTOMERS).fetchnumpy())
        customer_bitmaps = _customer_bitmaps(con)
        n_customers = con.execute("select count(*) from customers").fetchone()[0]
        for table in ("orders", "cell_keys", "order_categories", "customers"):
            con.execute(f"drop table {table}")
        con.execute("detach pub")
    except BaseException:
        con.close()
        raise
    index = FilterIndex(con, categories, cells, customer_bitmaps, int(n_customers))
    return BuildResult(index, "", time.perf_counter() - t0)


def _cells(keys: list[tuple], rows: dict[str, Any]) -> list[Cell]:
    """Cells from their keys (month, season, mask; in cell order) and the (cell, customer,
    orders) rows sorted by cell."""
    ids, ck, n = rows["cell"], rows["ck"].astype(np.uint32), rows["n"]
    bounds = np.searchsorted(ids, np.arange(len(keys) + 1))
    return [Cell(month=month, season=season, mask=int(mask),
                 once=BitMap(ck[bounds[i]:bounds[i + 1]]),
                 twice=BitMap(ck[bounds[i]:bounds[i + 1]][n[bounds[i]:bounds[i + 1]] > 1]))
            for i, (month, season, mask) in enumerate(keys)]


def _customer_bitmaps(con: duckdb.DuckDBPyConnection) -> dict[str, dict[Any, BitMap]]:
    """For each customer filter, the customers of each value."""
    out: dict[str, dict[Any, BitMap]] = {}
    for key, column in CUSTOMER_FIELDS.items():
        values = [v for (v,) in con.execute(
            f"select distinct {column} from customers where {column} is not null").fetchall()]  # noqa: S608
        out[key] = {v: BitMap(con.execute(
            f"select ck from customers where {column} = ? order by ck",  # noqa: S608
            [v]).fetchnumpy()["ck"].astype(np.uint32)) for v in values}
    return out


# -- queries -------------------------------------------------------------------------------------


def _month_aligned(f: Filters) -> bool:
    start_ok = f.date_from is None or f.date_from.day == 1
    end_ok = f.date_to is None or f.date_to.day == calendar.monthrange(
        f.date_to.year, f.date_to.month)[1]
    return start_ok and end_ok


class FilterIndex:
    """See the module's docstring. Thread-safe: queries on the cube run on their own cursor."""

    def __init__(self, con: duckdb.DuckDBPyConnection, categories: dict[str, int],
                 cells: list[Cell], customer_bitmaps: dict[str, dict[Any, BitMap]],
                 n_customers: int) -> None:
        self._con = con
        self._lock = threading.Lock()
        self.categories = categories
        self.cells = cells
        self.customer_bitmaps = customer_bitmaps
        self.n_customers = n_customers

    def close(self) -> None:
        self._con.close()

    def supports(self, f: Filters) -> bool:
        """Whether :meth:`kpis` and the series answer ``f`` (dates cover whole months)."""
        return _month_aligned(f)

    # -- selection -----------------------------------------------------------------------------
    def _category_mask(self, f: Filters) -> int:
        ids: Iterable[int] = ([self.categories[c] for c in f.category if c in self.categories]
                              if f.category else self.categories.values())
        mask = 0
        for i in ids:
            mask |= 1 << i
        return mask

    def _picked(self, f: Filters) -> list[Cell]:
        mask = self._category_mask(f)
        first = f.date_from.replace(day=1) if f.date_from else None
        last = f.date_to.replace(day=1) if f.date_to else None
        seasons = set(f.season)
        out = []
        for c in self.cells:
            if not c.mask & mask:
                continue
            if seasons and c.season not in seasons:
                continue
            if (first or last) and (c.month is None or (first and c.month < first)
                                    or (last and c.month > last)):
                continue
            out.append(c)
        return out

    def _customers(self, f: Filters) -> BitMap | None:
        """The customers passing the customer filters, or None when none is set."""
        selected: BitMap | None = None
        for key, by_value in self.customer_bitmaps.items():
            values = f.get(key)
            if not values:
                continue
            part = BitMap.union(*[by_value[v] for v in values if v in by_value]) if any(
                v in by_value for v in values) else BitMap()
            selected = part if selected is None else selected & part
        return selected

    def _cube(self, select: str, f: Filters, *, where: tuple[str, ...] = (),
              group: str = "") -> pd.DataFrame:
        """``select ... from cube where <f> [and where] [group by group]``."""
        params: dict[str, Any] = {}
        conditions = list(where)
        if f.category:
            ids = tuple(self.categories[c] for c in f.category if c in self.categories)
            conditions.append(_in("cat_id", "cat", ids, params) if ids else "false")
        if f.season:
            conditions.append(_in("season", "season", f.season, params))
        if f.date_from:
            params["month_from"] = f.date_from.replace(day=1)
            conditions.append("month >= @month_from")
        if f.date_to:
            params["month_to"] = f.date_to.replace(day=1)
            conditions.append("month <= @month_to")
        for key, column in CUSTOMER_FIELDS.items():
            values = f.get(key)
            if values:
                conditions.append(_in(column, key, tuple(values), params))
        if "@cat_mask" in select:
            params["cat_mask"] = self._category_mask(f)
        sql = f"select {select} from cube"  # noqa: S608 - package text only
        if conditions:
            sql += " where " + " and ".join(conditions)
        if group:
            sql += f" group by {group}"
        with self._lock:
            cursor = self._con.cursor()
        try:
            return DuckDBStore(cursor, read_only=True).query(sql, params)
        finally:
            cursor.close()

    #: orders counted in the cube row of their lowest selected category
    _ORDERS = ("sum(case when (order_mask & @cat_mask & ((cast(1 as bigint) << cat_id) - 1))"
               " = 0 then orders else 0 end)")

    # -- answers -------------------------------------------------------------------------------
    def kpis(self, f: Filters) -> dict[str, float]:
        """Customers, orders, revenue and repeat customers in scope (as ``data.kpis``)."""
        seen, repeat = self._distinct(self._picked(f), self._customers(f))
        sums = self._cube(f"cast(coalesce(sum(revenue), 0) as double) as revenue, "
                          f"coalesce({self._ORDERS}, 0) as orders", f).iloc[0]
        return {"customers": len(seen), "orders": int(sums["orders"]),
                "revenue": float(sums["revenue"]), "repeat_customers": len(repeat)}

    @staticmethod
    def _distinct(cells: list[Cell], within: BitMap | None) -> tuple[BitMap, BitMap]:
        """Customers with an order in ``cells``, and those with two or more orders there."""
        seen, repeat = BitMap(), BitMap()
        for c in cells:
            repeat |= seen & c.once
            repeat |= c.twice
            seen |= c.once
        if within is not None:
            seen &= within
            repeat &= within
        return seen, repeat

    def sales_by_month(self, f: Filters) -> pd.DataFrame:
        """Lines, units and revenue per purchase month in scope (dated lines only)."""
        return self._cube("month as period, sum(lines) as n_purchases, sum(units) as units, "
                          "cast(sum(revenue) as double) as revenue", f, where=("month is not null",),
                          group="month")

    def sales_by_season(self, f: Filters) -> pd.DataFrame:
        """Lines, customers, units and revenue per season in scope (``Unknown`` when none)."""
        df = self._cube("coalesce(season, 'Unknown') as season, sum(lines) as n_purchases, "
                        "sum(units) as units, cast(sum(revenue) as double) as revenue", f,
                        group="coalesce(season, 'Unknown')")
        picked, within = self._picked(f), self._customers(f)
        customers = {}
        for season in df["season"]:
            key = None if season == "Unknown" else season
            customers[season] = len(self._distinct(
                [c for c in picked if c.season == key], within)[0])
        return df.assign(n_customers=df["season"].map(customers).astype("int64"))

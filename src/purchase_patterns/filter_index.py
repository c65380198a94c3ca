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
      with two or more, as compressed bitmaps (Roaring) of dense customer numbers; and the
      same merged per (month, season), for all categories and for each category, so that the
      commonest selections combine a few dozen bitmaps instead of hundreds;
    - **customer bitmaps** per value of each customer filter (gender, age band, state, census
      region, subscription, segment);
    - **cube**: lines, units, revenue (in cents) and orders summed by category, month, season,
      order mask and the customer filter columns as small-integer codes, sorted by category
      and month (about 1M rows for 10M purchase lines).

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

The figures equal the SQL definitions of ``dashboard/data.py``
(tests/dashboard/test_filter_index.py compares them on the Kaggle file and generated data
for many selections). At 10M purchase lines the build takes about 15 s and answers a
selection in 10-35 ms (bench/bench_dashboard.py).
"""

from __future__ import annotations

import calendar
import functools
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
       min(coalesce(season, '')) over w <> max(coalesce(season, '')) over w as mixed_season
from grouped
window w as (partition by ck, purchase_date, undated_line)
"""
#: Small integer codes for the values of each filter column the cube holds.
_CODES = """
create temp table code_{name} as
select value, cast(row_number() over (order by value) - 1 as smallint) as code
from (select distinct {column} as value from {table} where {column} is not null) as d
"""
#: Sums by category, month, season, order mask and the customer filters (as codes), sorted
#: by category and month so that a filtered scan skips whole row groups; money in cents.
_CUBE = """
create table cube as
select o.cat_id, o.month, s.code as season, o.order_mask, {customer_codes},
       cast(sum(o.lines) as bigint) as lines, cast(sum(o.units) as bigint) as units,
       cast(sum(o.revenue) * 100 as bigint) as revenue_cents, cast(count(*) as bigint) as orders
from order_categories as o
inner join customers as c on c.ck = o.ck
{customer_joins}
left join code_season as s on s.value = o.season
group by all
order by o.cat_id, o.month
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
    """Orders of one (month, season, category mask), or a group of such cells."""

    month: date | None
    season: str | None
    mask: int
    once: BitMap  # customers with at least one order here
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
        codes = {"season": _codes(con, "season", "season", "order_categories")}
        for key, column in CUSTOMER_FIELDS.items():
            codes[key] = _codes(con, key, column, "customers")
        con.execute(_CUBE.format(
            customer_codes=", ".join(f"k_{key}.code as {key}" for key in CUSTOMER_FIELDS),
            customer_joins="\n".join(
                f"left join code_{key} as k_{key} on k_{key}.value = c.{column}"
                for key, column in CUSTOMER_FIELDS.items())))
        con.execute(_ORDERS)
        con.execute(_CELL_KEYS)
        cells = _cells(con.execute("select month, season, order_mask from cell_keys "
                                   "order by cell").fetchall(),
                       con.execute(_CELL_CUSTOMERS).fetchnumpy())
        customers = {key: {value: BitMap(con.execute(
            f"select ck from customers where {column} = ? order by ck",  # noqa: S608
            [value]).fetchnumpy()["ck"].astype(np.uint32)) for value in codes[key]}
            for key, column in CUSTOMER_FIELDS.items()}
        for table in ("orders", "cell_keys", "order_categories", "customers"):
            con.execute(f"drop table {table}")
        con.execute("detach pub")
    except BaseException:
        con.close()
        raise
    index = FilterIndex(con, categories, codes, cells, customers)
    return BuildResult(index, "", time.perf_counter() - t0)


def _codes(con: duckdb.DuckDBPyConnection, name: str, column: str,
           table: str) -> dict[Any, int]:
    """Number the values of ``table.column`` (a temp table ``code_<name>``); value → code."""
    con.execute(_CODES.format(name=name, column=column, table=table))
    return dict(con.execute(f"select value, code from code_{name}").fetchall())  # noqa: S608


def _cells(keys: list[tuple], rows: dict[str, Any]) -> list[Cell]:
    """Cells from their keys (month, season, mask; in cell order) and the (cell, customer,
    orders) rows sorted by cell."""
    ids, ck, n = rows["cell"], rows["ck"].astype(np.uint32), rows["n"]
    bounds = np.searchsorted(ids, np.arange(len(keys) + 1))
    return [Cell(month=month, season=season, mask=int(mask),
                 once=BitMap(ck[bounds[i]:bounds[i + 1]]),
                 twice=BitMap(ck[bounds[i]:bounds[i + 1]][n[bounds[i]:bounds[i + 1]] > 1]))
            for i, (month, season, mask) in enumerate(keys)]


def _distinct(cells: Iterable[Cell]) -> tuple[BitMap, BitMap]:
    """Customers with an order in ``cells``, and those with two or more orders there
    (distinct cells hold distinct orders)."""
    seen, repeat = BitMap(), BitMap()
    for c in cells:
        repeat |= seen & c.once
        repeat |= c.twice
        seen |= c.once
    return seen, repeat


def _grouped(cells: list[Cell], mask: int) -> list[Cell]:
    """The cells whose mask shares a bit with ``mask``, merged per (month, season)."""
    groups: dict[tuple[date | None, str | None], list[Cell]] = {}
    for c in cells:
        if c.mask & mask:
            groups.setdefault((c.month, c.season), []).append(c)
    out = []
    for (month, season), members in groups.items():
        once, twice = _distinct(members)
        out.append(Cell(month, season, mask, once, twice))
    return out


# -- queries -------------------------------------------------------------------------------------


def _month_aligned(f: Filters) -> bool:
    start_ok = f.date_from is None or f.date_from.day == 1
    end_ok = f.date_to is None or f.date_to.day == calendar.monthrange(
        f.date_to.year, f.date_to.month)[1]
    return start_ok and end_ok


#: Orders in the cube rows in scope: an order with several selected categories is counted in
#: the row of its lowest selected category only.
_ORDERS_IN_SCOPE = ("sum(case when (order_mask & @cat_mask & ((cast(1 as bigint) << cat_id)"
                    " - 1)) = 0 then orders else 0 end)")


class FilterIndex:
    """See the module's docstring. Thread-safe: each cube query runs on its own cursor, and
    the bitmaps are only read after the build."""

    def __init__(self, con: duckdb.DuckDBPyConnection, categories: dict[str, int],
                 codes: dict[str, dict[Any, int]], cells: list[Cell],
                 customers: dict[str, dict[Any, BitMap]]) -> None:
        self._con = con
        self._lock = threading.Lock()
        self.categories = categories
        self.codes = codes
        self._season_names = {code: name for name, code in codes["season"].items()}
        self.cells = cells
        self.customers = customers
        everything = self._mask(self.categories.values())
        # the cells merged per (month, season): for no category filter and for each category
        self._groups = {None: _grouped(cells, everything), **{
            i: _grouped(cells, 1 << i) for i in self.categories.values()}}
        self._month_sums = functools.lru_cache(maxsize=64)(self._month_sums_uncached)

    def close(self) -> None:
        self._con.close()

    def cache_clear(self) -> None:
        """Forget the cube sums remembered per selection (benchmarks time the first answer)."""
        self._month_sums.cache_clear()

    def supports(self, f: Filters) -> bool:
        """Whether :meth:`kpis` and the series answer ``f`` (dates cover whole months)."""
        return _month_aligned(f)

    # -- selection -----------------------------------------------------------------------------
    @staticmethod
    def _mask(ids: Iterable[int]) -> int:
        mask = 0
        for i in ids:
            mask |= 1 << i
        return mask

    def _category_ids(self, f: Filters) -> list[int]:
        if not f.category:
            return list(self.categories.values())
        return [self.categories[c] for c in f.category if c in self.categories]

    def _picked(self, f: Filters) -> list[Cell]:
        """The cells (or merged cells) of the orders the purchase filters keep."""
        ids = self._category_ids(f)
        if not f.category:
            units = self._groups[None]
        elif len(ids) == 1:
            units = self._groups[ids[0]]
        else:
            mask = self._mask(ids)
            units = [c for c in self.cells if c.mask & mask]
        first = f.date_from.replace(day=1) if f.date_from else None
        last = f.date_to.replace(day=1) if f.date_to else None
        seasons = set(f.season)
        return [c for c in units
                if (not seasons or c.season in seasons)
                and (not (first or last) or (c.month is not None
                                             and (first is None or c.month >= first)
                                             and (last is None or c.month <= last)))]

    def _allowed(self, f: Filters) -> BitMap | None:
        """The customers passing the customer filters (None when none is set)."""
        allowed = None
        for key, by_value in self.customers.items():
            if f.get(key):
                values = [by_value[v] for v in f.get(key) if v in by_value]
                part = BitMap.union(*values) if values else BitMap()
                allowed = part if allowed is None else allowed & part
        return allowed

    def _cube(self, select: str, f: Filters, *, where: tuple[str, ...] = (),
              group: str = "") -> pd.DataFrame:
        """``select ... from cube where <f> [and where] [group by group]``, values as
        parameters (codes of the selected values)."""
        params: dict[str, Any] = {}
        conditions = list(where)
        if f.category:
            ids = tuple(self._category_ids(f))
            conditions.append(_in("cat_id", "cat", ids, params) if ids else "false")
        if f.date_from:
            params["month_from"] = f.date_from.replace(day=1)
            conditions.append("month >= @month_from")
        if f.date_to:
            params["month_to"] = f.date_to.replace(day=1)
            conditions.append("month <= @month_to")
        for key in ("season", *CUSTOMER_FIELDS):
            values = f.get(key)
            if values:
                codes = tuple(self.codes[key][v] for v in values if v in self.codes[key])
                conditions.append(_in(key, key, codes, params) if codes else "false")
        if "@cat_mask" in select:
            params["cat_mask"] = self._mask(self._category_ids(f))
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

    def _month_sums_uncached(self, f: Filters) -> pd.DataFrame:
        return self._cube(f"month, sum(lines) as n_purchases, sum(units) as units, "
                          f"sum(revenue_cents) as revenue_cents, {_ORDERS_IN_SCOPE} as orders",
                          f, group="month")

    # -- answers -------------------------------------------------------------------------------
    def kpis(self, f: Filters) -> dict[str, float]:
        """Customers, orders, revenue and repeat customers in scope (as ``data.kpis``)."""
        seen, repeat = _distinct(self._picked(f))
        allowed = self._allowed(f)
        if allowed is not None:
            seen &= allowed
            repeat &= allowed
        sums = self._month_sums(f)
        return {"customers": len(seen), "orders": int(sums["orders"].sum()),
                "revenue": int(sums["revenue_cents"].sum()) / 100,
                "repeat_customers": len(repeat)}

    def sales_by_month(self, f: Filters) -> pd.DataFrame:
        """Lines, units and revenue per purchase month in scope (dated lines only)."""
        df = self._month_sums(f)
        df = df[df["month"].notna()]
        return pd.DataFrame({"period": df["month"], "n_purchases": df["n_purchases"],
                             "units": df["units"], "revenue": df["revenue_cents"] / 100})

    def _season(self, code: Any) -> str | None:
        """The season of a cube code (None for lines without one)."""
        return None if pd.isna(code) else self._season_names[int(code)]

    def sales_by_season(self, f: Filters) -> pd.DataFrame:
        """Lines, customers, units and revenue per season in scope (``Unknown`` when none)."""
        df = self._cube("season as code, sum(lines) as n_purchases, sum(units) as units, "
                        "sum(revenue_cents) as revenue_cents", f, group="season")
        picked, allowed = self._picked(f), self._allowed(f)
        out = []
        for row in df.itertuples(index=False):
            season = self._season(row.code)
            customers = BitMap.union(BitMap(), *[c.once for c in picked if c.season == season])
            if allowed is not None:
                customers &= allowed
            out.append({"season": season or "Unknown", "n_purchases": row.n_purchases,
                        "n_customers": len(customers), "units": row.units,
                        "revenue": row.revenue_cents / 100})
        return pd.DataFrame(out, columns=["season", "n_purchases", "n_customers", "units",
                                          "revenue"])

    def sales_by_season_and_category(self, f: Filters) -> pd.DataFrame:
        """Lines, units and revenue per season (``Unknown`` when none) and category."""
        df = self._cube("season as code, cat_id, sum(lines) as n_purchases, "
                        "sum(units) as units, sum(revenue_cents) as revenue_cents", f,
                        group="season, cat_id")
        names = {i: name for name, i in self.categories.items()}
        return pd.DataFrame({
            "season": [self._season(c) or "Unknown" for c in df["code"]],
            "category": [names[int(i)] for i in df["cat_id"]],
            "n_purchases": df["n_purchases"], "units": df["units"],
            "revenue": df["revenue_cents"] / 100})

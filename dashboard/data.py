"""The dashboard's one data-access module: cached, parameterised queries on the marts and the
``analytics`` tables. Pages call these functions; they never see SQL or a connection.

Where the data comes from
    On DuckDB, the copy of the warehouse that the last successful run published
    (:func:`purchase_patterns.publish.current`), opened read-only once per published file;
    every query batch runs on its own cursor. A new publish is a new file, hence a new
    source key: the next rerun reads it, while a run that is rebuilding the working warehouse
    is never touched (no lock, no half-built table). On BigQuery, the configured datasets
    through the same :class:`~purchase_patterns.datastore.DataStore` interface.

How queries are written
    Only ``store.relation`` names, ``@name`` parameters and portable SQL (plain aggregates,
    ``coalesce``, ``case``), so the same text runs on DuckDB and BigQuery.
    Filters become parameters through :mod:`purchase_patterns.filters`. Without filters,
    queries read the marts' aggregates (``agg_*``, ``customer_features``); with filters they
    aggregate ``fct_purchases`` in SQL. Results are cached by source key and arguments.
    On DuckDB, the headline figures and the monthly and seasonal series for a purchase
    filter come from :mod:`purchase_patterns.filter_index` once it is built (the same
    figures, in milliseconds instead of a second at 10M purchase lines); until then, and for
    what it does not cover, from SQL.

Definitions shared by every page
    A *purchase* is a purchase line; an *order* is a purchase occasion (a customer's purchase
    day, as in the marts; every line when the data has no dates); *revenue* is the sum of
    amounts; *average order value* is revenue / orders; *repeat rate* is the share of
    customers with more than one order (meaningful on dated data only).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from purchase_patterns import capabilities, filter_index, publish
from purchase_patterns.datastore import DataStore, DuckDBStore, open_store
from purchase_patterns.filters import Filters, customer_scope, purchase_scope
from purchase_patterns.settings import Settings, load_settings

#: Cached results live this long. Published DuckDB copies never change (a publish makes a
#: new file and so new keys): this only bounds memory there, and staleness on BigQuery.
CACHE_TTL_SECONDS = 600
#: Rows a drill-down or look-up table shows; its CSV download holds up to EXPORT_LIMIT.
SHOW_LIMIT = 1_000
EXPORT_LIMIT = 100_000
SEASON_ORDER = ["Winter", "Spring", "Summer", "Fall", "Unknown"]
AGE_BAND_ORDER = ["<25", "25-34", "35-44", "45-54", "55-64", "65+", "Unknown"]
DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
#: The tables pages look for, as ``layer.table``.
KNOWN_TABLES = (
    "marts.fct_purchases", "marts.dim_customers", "marts.dim_products",
    "marts.customer_features", "marts.agg_sales_by_season", "marts.agg_sales_by_month",
    "marts.agg_sales_by_week", "marts.agg_category_performance", "marts.agg_item_performance",
    "marts.agg_sales_by_state", "marts.agg_sales_by_region", "reference.us_states",
    "quality.dq_results", "raw.rejects", "raw.batches", "meta.runs", "meta.run_log",
    "analytics.analyses", "analytics.customer_segments", "analytics.segment_summary",
    "analytics.customer_predictions", "analytics.model_cards", "analytics.model_metrics",
    "analytics.trend_periods", "analytics.affinity", "analytics.recommendations",
)
_BIGQUERY = "bigquery:"
#: A customer's orders (purchase occasions, as the marts define them: purchase days, and
#: every line without a date), counted within a group that holds one customer.
CUSTOMER_ORDERS = ("count(distinct f.purchase_date) "
                   "+ count(case when f.purchase_date is null then 1 end)")


# -- settings and source -------------------------------------------------------------------------


def settings() -> Settings:
    """Settings for this dashboard process: ``--home``, ``--config`` and ``--target`` given
    to the script (after ``--`` on the ``streamlit run`` line, as ``purchase-patterns
    dashboard`` does), then the environment and YAML file as everywhere else."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for name in ("--home", "--config", "--target"):
        parser.add_argument(name)
    args, _ = parser.parse_known_args(sys.argv[1:])
    return load_settings(home=args.home, config=args.config, target=args.target)


@dataclass(frozen=True)
class Source:
    """What the dashboard reads: ``key`` identifies it in every cache (the published file,
    or ``bigquery:<project>.<dataset>``); ``label`` is shown to the user."""

    key: str
    label: str


def source(s: Settings | None = None) -> Source | None:
    """The warehouse to read now, or None when nothing has been published yet."""
    s = s or settings()
    if s.target == "bigquery":
        name = f"{s.gcp.project}.{s.gcp.dataset}"
        return Source(_BIGQUERY + name, f"BigQuery {name}")
    path = publish.current(s)
    if path is None:
        return None
    return Source(str(path.resolve()), f"{path.name} (published)")


def _close(store: DataStore) -> None:
    store.close()


@st.cache_resource(max_entries=publish.KEEP + 1, show_spinner=False, on_release=_close)
def _published(path: str) -> DataStore:
    """One read-only store per published file, shared by every session of this process
    (as many as the published folder keeps, plus the one just published)."""
    return open_store(settings(), read_only=True, path=Path(path))


@contextmanager
def reader(key: str) -> Iterator[DataStore]:
    """A read-only store for one batch of queries on the source ``key``."""
    if key.startswith(_BIGQUERY):
        store = open_store(settings(), read_only=True)
    else:
        shared = _published(key)
        assert isinstance(shared, DuckDBStore)
        store = DuckDBStore(shared.con.cursor(), read_only=True)
    try:
        yield store
    finally:
        store.close()


# -- the filter index ------------------------------------------------------------------------


class IndexSlot:
    """The filter index of one published file: built in a thread (or at once, with
    ``dashboard.filter_index: blocking``); ``index`` is None until it is ready."""

    def __init__(self, path: str, s: Settings) -> None:
        self.index: filter_index.FilterIndex | None = None
        self.closed = False
        self.state = "building"
        self.detail = ""
        self._path = Path(path)
        self._limits = {"memory_limit": s.duckdb_memory_limit, "threads": s.duckdb_threads}
        if s.dashboard.filter_index == "blocking":
            self._build()
        else:
            threading.Thread(target=self._build, name="filter-index", daemon=True).start()

    def _build(self) -> None:
        try:
            result = filter_index.build(self._path, **self._limits)
        except Exception as exc:  # the dashboard goes on with SQL; say why in the sidebar
            logging.getLogger(__name__).exception("filter index: build failed")
            self.state, self.detail = "failed", f"{type(exc).__name__}: {exc}"
            return
        if result.index is None:
            self.state, self.detail = "unavailable", result.reason
        elif self.closed:  # released from the cache while it was being built
            result.index.close()
        else:
            self.index, self.state = result.index, "ready"
            self.detail = f"built in {result.seconds:.1f} s"

    def close(self) -> None:
        self.closed = True
        if self.index is not None:
            self.index.close()


@st.cache_resource(max_entries=publish.KEEP + 1, show_spinner=False,
                   on_release=IndexSlot.close)
def _index_slot(path: str) -> IndexSlot:
    return IndexSlot(path, settings())


def index_slot(key: str) -> IndexSlot | None:
    """The filter index's slot for the source ``key`` (None: BigQuery, or turned off)."""
    if key.startswith(_BIGQUERY) or settings().dashboard.filter_index == "off":
        return None
    return _index_slot(key)


def cached_query(fn: Callable[..., Any] | None = None, *,
                 fast: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """Turn ``fn(store, *args)`` into ``fn(source_key, *args)``, cached by its arguments
    (``Filters`` included). With ``fast``, ``fast(index, *args)`` answers first when the
    source's filter index is ready; it returns None for what the index does not cover.
    ``fn.uncached`` keeps the plain function and ``fn.fast`` the index's, for benchmarks."""
    if fn is None:
        return functools.partial(cached_query, fast=fast)

    @st.cache_data(ttl=CACHE_TTL_SECONDS, max_entries=256, show_spinner=False)
    @functools.wraps(fn)
    def cached(key: str, *args: Any) -> Any:
        slot = index_slot(key) if fast is not None else None
        result = _from_index(fast, slot.index if slot else None, args)
        if result is not None:
            return result
        with reader(key) as store:
            return fn(store, *args)

    cached.uncached = fn  # type: ignore[attr-defined]
    cached.fast = fast  # type: ignore[attr-defined]
    return cached


def _from_index(fast: Callable[..., Any] | None, index: filter_index.FilterIndex | None,
                args: tuple[Any, ...]) -> Any:
    """The index's answer, or None (no index yet, or a selection it does not cover)."""
    return None if fast is None or index is None else fast(index, *args)


def uncached(query: Callable[..., Any], store: DataStore,
             index: filter_index.FilterIndex | None, *args: Any) -> Any:
    """What the cached ``query`` answers, computed now (benchmarks): from ``index`` when it
    answers, else by the query's SQL on ``store``."""
    result = _from_index(query.fast, index, args)  # type: ignore[attr-defined]
    return query.uncached(store, *args) if result is None else result  # type: ignore[attr-defined]


def _frame(store: DataStore, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run a query; NUMERIC columns (Decimal objects on BigQuery) become floats and DATE
    columns (timestamps at midnight in pandas) become dates."""
    df = store.query(sql, params or {})
    for col in df.columns:
        if df[col].dtype == object:
            first = df[col].dropna()
            if len(first) and isinstance(first.iloc[0], Decimal):
                df[col] = df[col].astype(float)
        elif pd.api.types.is_datetime64_any_dtype(df[col]):
            values = df[col].dropna()
            if len(values) and (values == values.dt.normalize()).all():
                df[col] = df[col].dt.date
    return df


# -- what the warehouse holds --------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    """Which tables exist and what the data supports (capability decisions)."""

    tables: frozenset[str]
    decisions: tuple[capabilities.Capability, ...] = ()
    profile: capabilities.DataProfile | None = None
    analyses: tuple[dict[str, Any], ...] = field(default=())

    def has(self, name: str) -> bool:
        return name in self.tables

    @property
    def dated(self) -> bool:
        return bool(self.profile and self.profile.dated)

    def decision(self, analysis: str) -> capabilities.Capability | None:
        return next((d for d in self.decisions if d.analysis == analysis), None)

    def missing(self, name: str, stage: str) -> str:
        """The sentence a page shows when ``name`` (``analytics.x``) is absent."""
        return (f"`{name}` is not in this warehouse: it is written by the {stage} stage, "
                "which has not produced it for this data yet.")


@cached_query
def catalog(store: DataStore) -> Catalog:
    tables = frozenset(t for t in KNOWN_TABLES if store.has_table(*t.split(".")))
    if "marts.fct_purchases" not in tables:
        return Catalog(tables)
    prof = capabilities.profile(store)
    analyses: tuple[dict[str, Any], ...] = ()
    if "analytics.analyses" in tables:
        analyses = tuple(_frame(store, "select analysis, stage, status, reason from "  # noqa: S608
                                       f"{store.relation('analytics', 'analyses')} "
                                       "order by stage, analysis").to_dict("records"))
    return Catalog(tables, tuple(capabilities.decide(prof)), prof, analyses)


@cached_query
def filter_options(store: DataStore, has_segments: bool) -> dict[str, Any]:
    """The values each filter can take (non-empty ones only) and the date range."""
    cust = store.relation("marts", "dim_customers")

    def distinct(column: str, table: str = cust) -> list[Any]:
        df = _frame(store, f"select distinct {column} as v from {table} "  # noqa: S608
                           f"where {column} is not null")
        return sorted(df["v"].tolist(), key=str)

    seasons = distinct("season", store.relation("marts", "agg_sales_by_season"))
    categories = _frame(store, "select distinct category_name as v from "  # noqa: S608
                               f"{store.relation('marts', 'dim_products')} "
                               "where not is_unknown_product")["v"].tolist()
    bands = distinct("age_band")
    dates = _frame(store, f"select min(first_purchase_date) as first, "  # noqa: S608
                          f"max(last_purchase_date) as last from {cust}").iloc[0]
    out = {
        "season": [s for s in SEASON_ORDER if s in seasons and s != "Unknown"],
        "category": sorted(categories),
        "state": distinct("state_name"),
        "census_region": distinct("census_region"),
        "gender": distinct("gender"),
        "age_band": [b for b in AGE_BAND_ORDER if b in bands and b != "Unknown"],
        "subscription": distinct("has_subscription"),
        "segment": [],
        "date_from": None if pd.isna(dates["first"]) else pd.Timestamp(dates["first"]).date(),
        "date_to": None if pd.isna(dates["last"]) else pd.Timestamp(dates["last"]).date(),
    }
    if has_segments:
        out["segment"] = _frame(
            store, "select segment, count(*) as n from "  # noqa: S608
                   f"{store.relation('analytics', 'customer_segments')} "
                   "group by segment order by n desc, segment")["segment"].tolist()
    return out


# -- the stakeholder report ---------------------------------------------------------------------


def report_builder() -> Callable[[Filters], Path] | None:
    """A function building the stakeholder report (self-contained HTML) for a selection,
    or None when the report builder is not part of this installation."""
    try:
        from purchase_patterns.report.build import build_report
    except ImportError:
        return None
    from purchase_patterns.pipeline import new_run_id

    def build(f: Filters) -> Path:
        # from what the dashboard shows (the published copy: a running job never locks it),
        # HTML only (the download is the self-contained HTML file)
        s = settings()
        path = None if s.target == "bigquery" else publish.current(s)
        return build_report(s, f"dashboard-{new_run_id()}", f, path=path, pdf=False).html

    return build


# -- overview ---------------------------------------------------------------------------------


def _kpis_from_purchases(store: DataStore, f: Filters) -> dict[str, Any]:
    scope = purchase_scope(store, f)
    df = _frame(store, f"""
        with per_customer as (
            select f.customer_id, {CUSTOMER_ORDERS} as orders, sum(f.amount) as revenue
            {scope.sql} group by f.customer_id)
        select count(*) as customers, sum(orders) as orders, sum(revenue) as revenue,
               sum(case when orders > 1 then 1 else 0 end) as repeat_customers
        from per_customer""", scope.params)  # noqa: S608 - package-built text, values are params
    return df.iloc[0].to_dict()


def _kpis_from_customers(store: DataStore, f: Filters) -> dict[str, Any]:
    scope = customer_scope(store, f, table="customer_features")
    df = _frame(store, f"""
        select count(*) as customers, sum(c.n_purchase_occasions) as orders,
               sum(c.total_spend) as revenue,
               sum(case when c.n_purchase_occasions > 1 then 1 else 0 end) as repeat_customers
        {scope.sql}""", scope.params)  # noqa: S608
    return df.iloc[0].to_dict()


def _kpis_indexed(index: filter_index.FilterIndex, f: Filters) -> dict[str, Any] | None:
    # without a purchase filter, customer_features answers as fast as the index
    if not (f.on_purchases and index.supports(f)):
        return None
    return _kpi_figures(index.kpis(f))


@cached_query(fast=_kpis_indexed)
def kpis(store: DataStore, f: Filters) -> dict[str, float | None]:
    """Customers, revenue, orders, average order value and repeat rate in scope. Without a
    purchase filter they come from ``customer_features`` (one row per customer)."""
    return _kpi_figures(_kpis_from_purchases(store, f) if f.on_purchases
                        else _kpis_from_customers(store, f))


def _kpi_figures(raw: dict[str, Any]) -> dict[str, float | None]:
    raw = {k: 0 if v is None or pd.isna(v) else v for k, v in raw.items()}  # sums of nothing
    customers, orders, revenue = int(raw["customers"]), int(raw["orders"]), float(raw["revenue"])
    return {
        "customers": customers,
        "revenue": revenue,
        "orders": orders,
        "aov": revenue / orders if orders else None,
        "repeat_rate": int(raw["repeat_customers"]) / customers if customers else None,
    }


@cached_query
def runs(store: DataStore, limit: int) -> pd.DataFrame:
    """The latest runs, newest first, with the stages each one ran."""
    df = _frame(store, f"""
        select run_id, command, status, exit_code, started_at, finished_at
        from {store.relation('meta', 'runs')}
        order by started_at desc limit @limit""", {"limit": limit})  # noqa: S608
    if df.empty or not store.has_table("meta", "run_log"):
        return df
    log = _frame(store, f"""
        select run_id, stage, status from {store.relation('meta', 'run_log')}
        order by started_at""")  # noqa: S608
    stages = log.assign(s=log["stage"] + ": " + log["status"]).groupby("run_id")["s"].agg(
        ", ".join)
    return df.assign(stages=df["run_id"].map(stages).fillna(""))


@cached_query
def quality_checks(store: DataStore) -> pd.DataFrame:
    """Every check of the latest checked run, worst first."""
    return _frame(store, f"""
        select check_name, source, severity, status, failing_rows, message, run_id, checked_at
        from {store.relation('quality', 'dq_results')}
        where checked_at = (select max(checked_at) from
                            {store.relation('quality', 'dq_results')})
        order by case status when 'error' then 0 when 'fail' then 1 when 'warn' then 2
                 when 'skipped' then 3 else 4 end, check_name""")  # noqa: S608


def quality_status(checks: pd.DataFrame) -> str:
    """``failed`` when an error-severity check failed, ``warnings`` when any check warned or
    failed with warn severity, ``passed`` otherwise, ``unknown`` without checks."""
    if checks.empty:
        return "unknown"
    bad = checks["status"].isin(["fail", "error"])
    if (bad & (checks["severity"] == "error")).any():
        return "failed"
    if bad.any() or (checks["status"] == "warn").any():
        return "warnings"
    return "passed"


@cached_query
def rejects(store: DataStore, limit: int) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(reasons with counts, the first ``limit`` rejected rows, total rejected rows)."""
    rel = store.relation("raw", "rejects")
    reasons = _frame(store, f"""
        select reason, column_name, count(*) as rows_rejected from {rel}
        group by reason, column_name order by rows_rejected desc, reason""")  # noqa: S608
    rows = _frame(store, f"""
        select source_file, line, column_name, reason, raw_text from {rel}
        order by source_file, line limit @limit""", {"limit": limit})  # noqa: S608
    return reasons, rows, int(reasons["rows_rejected"].sum()) if len(reasons) else 0


@cached_query
def batches(store: DataStore) -> pd.DataFrame:
    return _frame(store, f"""
        select source_file, source_format, rows_in, rows_loaded, rows_rejected, loaded_at,
               batch_id
        from {store.relation('raw', 'batches')} order by loaded_at desc""")  # noqa: S608


@cached_query
def recommendations(store: DataStore, limit: int) -> pd.DataFrame:
    return _frame(store, f"""
        select rank, title, action, rationale, segment, customers, revenue_at_stake,
               clv_at_stake
        from {store.relation('analytics', 'recommendations')}
        order by rank limit @limit""", {"limit": limit})  # noqa: S608


# -- sales by a dimension (trends, products, geography, segments) ---------------------------


def _sales_by(store: DataStore, f: Filters, dims: dict[str, str], *, products: bool = False,
              segments: bool = False, distinct_customers: bool = True) -> pd.DataFrame:
    """Purchases, customers, units and revenue of the purchases in scope per value of the
    ``dims`` (output name → package-built SQL expression over aliases f, p, s). Counting
    distinct customers per value is the costly part; series that do not show it skip it."""
    scope = purchase_scope(store, f, products=products, segments=segments)
    select = ", ".join(f"{expr} as {name}" for name, expr in dims.items())
    group = ", ".join(dims.values())
    customers = ", count(distinct f.customer_id) as n_customers" if distinct_customers else ""
    return _frame(store, f"""
        select {select}, count(*) as n_purchases{customers},
               sum(f.quantity) as units, sum(f.amount) as revenue
        {scope.sql} group by {group}""", scope.params)  # noqa: S608


def _sales_by_geography(store: DataStore, f: Filters, name: str, dim: str,
                        orders: bool) -> pd.DataFrame:
    """Purchases, customers and revenue per value of ``dim`` (the purchase line's state, or
    its Census region through alias ``us`` = reference.us_states); with ``orders`` also the
    orders (purchase occasions), which cost a second aggregation level."""
    scope = purchase_scope(store, f, states=True)
    if not orders:
        return _frame(store, f"""
            select {dim} as {name}, count(*) as n_purchases,
                   count(distinct f.customer_id) as n_customers, sum(f.amount) as revenue
            {scope.sql} group by {dim}""", scope.params)  # noqa: S608
    return _frame(store, f"""
        with per_customer as (
            select {dim} as {name}, f.customer_id, count(*) as n_lines,
                   {CUSTOMER_ORDERS} as n_orders, sum(f.amount) as revenue
            {scope.sql} group by {dim}, f.customer_id)
        select {name}, sum(n_lines) as n_purchases, count(*) as n_customers,
               sum(n_orders) as n_orders, sum(revenue) as revenue
        from per_customer group by {name}""", scope.params)  # noqa: S608


def _with_shares(df: pd.DataFrame) -> pd.DataFrame:
    total = df["revenue"].sum()
    return df.assign(share_of_revenue=df["revenue"] / total if total else 0.0)


def _by_season(df: pd.DataFrame) -> pd.DataFrame:
    df["season"] = pd.Categorical(df["season"], SEASON_ORDER, ordered=True)
    return _with_shares(df.sort_values("season").reset_index(drop=True))


def _sales_by_season_indexed(index: filter_index.FilterIndex,
                             f: Filters) -> pd.DataFrame | None:
    if f.is_empty or not index.supports(f):  # no filter: the mart answers
        return None
    return _by_season(index.sales_by_season(f))


@cached_query(fast=_sales_by_season_indexed)
def sales_by_season(store: DataStore, f: Filters) -> pd.DataFrame:
    if f.is_empty:
        df = _frame(store, f"""
            select season, n_purchases, n_customers, units, revenue
            from {store.relation('marts', 'agg_sales_by_season')}""")  # noqa: S608
    else:
        df = _sales_by(store, f, {"season": "coalesce(f.season, 'Unknown')"})
    return _by_season(df)


def _by_period(df: pd.DataFrame) -> pd.DataFrame:
    df["period"] = pd.to_datetime(df["period"])
    return df.sort_values("period").reset_index(drop=True)


def _sales_by_period_indexed(index: filter_index.FilterIndex, f: Filters,
                             grain: str) -> pd.DataFrame | None:
    if grain != "month" or f.is_empty or not index.supports(f):
        return None
    return _by_period(index.sales_by_month(f))


@cached_query(fast=_sales_by_period_indexed)
def sales_by_period(store: DataStore, f: Filters, grain: str) -> pd.DataFrame:
    """Monthly (``grain="month"``) or weekly series of dated purchases."""
    mart, column, fact_column = {
        "month": ("agg_sales_by_month", "purchase_month", "f.purchase_month"),
        "week": ("agg_sales_by_week", "week_start", "f.purchase_week"),
    }[grain]
    if f.is_empty:
        df = _frame(store, f"""
            select {column} as period, n_purchases, units, revenue
            from {store.relation('marts', mart)}""")  # noqa: S608
    else:
        df = _sales_by(store, f, {"period": fact_column}, distinct_customers=False)
        df = df[df["period"].notna()]
    return _by_period(df)


@cached_query
def sales_by_weekday(store: DataStore, f: Filters) -> pd.DataFrame:
    df = _sales_by(store, f, {"day_of_week": "f.purchase_day_of_week"},
                   distinct_customers=False)
    df = df[df["day_of_week"].notna()]
    df["day"] = df["day_of_week"].astype(int).map(lambda d: DAY_NAMES[d - 1])
    return df.sort_values("day_of_week").reset_index(drop=True)


@cached_query
def trend_peaks(store: DataStore) -> pd.DataFrame:
    """Peak periods as the analyze stage marked them (on all the data)."""
    return _frame(store, f"""
        select grain, period, period_start, revenue, peak_method
        from {store.relation('analytics', 'trend_periods')}
        where is_peak""")  # noqa: S608


def _category_by_season_indexed(index: filter_index.FilterIndex,
                                f: Filters) -> pd.DataFrame | None:
    return _shares_within_season(index.sales_by_season_and_category(f)) if index.supports(
        f) else None


@cached_query(fast=_category_by_season_indexed)
def category_by_season(store: DataStore, f: Filters) -> pd.DataFrame:
    return _shares_within_season(_sales_by(
        store, f, {"season": "coalesce(f.season, 'Unknown')", "category": "p.category_name"},
        products=True, distinct_customers=False))


def _shares_within_season(df: pd.DataFrame) -> pd.DataFrame:
    df["share_within_season"] = df["revenue"] / df.groupby("season")["revenue"].transform("sum")
    df["season"] = pd.Categorical(df["season"], SEASON_ORDER, ordered=True)
    return df.sort_values(["season", "category"]).reset_index(drop=True)


@cached_query
def category_performance(store: DataStore, f: Filters) -> pd.DataFrame:
    if f.is_empty:
        df = _frame(store, f"""
            select category_name as category, n_purchases, n_customers, units, revenue,
                   avg_review_rating
            from {store.relation('marts', 'agg_category_performance')}""")  # noqa: S608
    else:
        scope = purchase_scope(store, f, products=True)
        df = _frame(store, f"""
            select p.category_name as category, count(*) as n_purchases,
                   count(distinct f.customer_id) as n_customers, sum(f.quantity) as units,
                   sum(f.amount) as revenue, avg(f.review_rating) as avg_review_rating
            {scope.sql} group by p.category_name""", scope.params)  # noqa: S608
    df["avg_spend"] = df["revenue"] / df["n_purchases"]
    return _with_shares(df).sort_values("revenue", ascending=False).reset_index(drop=True)


@cached_query
def item_performance(store: DataStore, f: Filters) -> pd.DataFrame:
    if f.is_empty:
        df = _frame(store, f"""
            select item_name as item, category_name as category, n_purchases, n_customers,
                   units, revenue, avg_review_rating
            from {store.relation('marts', 'agg_item_performance')}""")  # noqa: S608
    else:
        scope = purchase_scope(store, f, products=True)
        df = _frame(store, f"""
            select p.item_name as item, p.category_name as category, count(*) as n_purchases,
                   count(distinct f.customer_id) as n_customers, sum(f.quantity) as units,
                   sum(f.amount) as revenue, avg(f.review_rating) as avg_review_rating
            {scope.sql} group by p.item_name, p.category_name""", scope.params)  # noqa: S608
    df["avg_spend"] = df["revenue"] / df["n_purchases"]
    return _with_shares(df).sort_values("revenue", ascending=False).reset_index(drop=True)


@cached_query
def affinity(store: DataStore, kind: str, limit: int) -> pd.DataFrame:
    """Association rules the analyze stage found, strongest lift first."""
    return _frame(store, f"""
        select antecedent, consequent, support, confidence, lift, n
        from {store.relation('analytics', 'affinity')}
        where kind = @kind order by lift desc, support desc limit @limit""",  # noqa: S608
        {"kind": kind, "limit": limit})


def _with_aov(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(aov=df["revenue"] / df["n_orders"]) if "n_orders" in df else df


@cached_query
def sales_by_state(store: DataStore, f: Filters, orders: bool) -> pd.DataFrame:
    """Per US state of the purchase line: purchases, customers, revenue and its share, with
    the state's code and Census region; with ``orders``, orders and average order value."""
    df = _sales_by_geography(store, f, "state_name", "f.state_name", orders)
    states = _frame(store, "select state as state_name, code as state_code, census_region "  # noqa: S608
                           f"from {store.relation('reference', 'us_states')}")
    df = _with_aov(df[df["state_name"].notna()].merge(states, on="state_name", how="left"))
    return _with_shares(df).sort_values("revenue", ascending=False).reset_index(drop=True)


@cached_query
def sales_by_region(store: DataStore, f: Filters, orders: bool) -> pd.DataFrame:
    """The same per Census region (``Unknown`` for purchases without a US state)."""
    df = _sales_by_geography(store, f, "census_region",
                             "coalesce(us.census_region, 'Unknown')", orders)
    return _with_shares(_with_aov(df)).sort_values("revenue", ascending=False).reset_index(drop=True)


# -- segments -----------------------------------------------------------------------------------


@cached_query
def segment_table(store: DataStore, f: Filters, has_predictions: bool) -> pd.DataFrame:
    """Per segment: customers in scope, their share, revenue of the purchases in scope and
    its share, average CLV (with predictions) and the segment's description."""
    scope = customer_scope(store, f, segments=True, predictions=has_predictions)
    clv = ", avg(cp.clv) as avg_clv" if has_predictions else ""
    customers = _frame(store, f"""
        select coalesce(s.segment, 'Unsegmented') as segment, count(*) as customers{clv}
        {scope.sql} group by coalesce(s.segment, 'Unsegmented')""", scope.params)  # noqa: S608
    if not has_predictions:
        customers["avg_clv"] = float("nan")
    sales = _sales_by(store, f, {"segment": "coalesce(s.segment, 'Unsegmented')"},
                      segments=True)[["segment", "revenue"]]
    df = customers.merge(sales, on="segment", how="left").fillna({"revenue": 0.0})
    df["share_of_customers"] = df["customers"] / df["customers"].sum()
    df = _with_shares(df)
    if store.has_table("analytics", "segment_summary"):
        desc = _frame(store, f"""
            select segment, max(description) as description
            from {store.relation('analytics', 'segment_summary')}
            group by segment""")  # noqa: S608
        df = df.merge(desc, on="segment", how="left")
    else:
        df["description"] = None
    return df.sort_values("revenue", ascending=False).reset_index(drop=True)


@cached_query
def rf_grid(store: DataStore, f: Filters) -> pd.DataFrame:
    """Customers and mean spend per recency × frequency score (RFM segments only)."""
    scope = customer_scope(store, f, table="customer_features", segments=True)
    return _frame(store, f"""
        select r_score, f_score, count(*) as customers, avg(total_spend) as avg_spend
        from (select s.r_score, s.f_score, c.total_spend {scope.sql}) as x
        where r_score is not null and f_score is not null
        group by r_score, f_score order by r_score, f_score""", scope.params)  # noqa: S608


@cached_query
def segment_schemes(store: DataStore) -> list[str]:
    return _frame(store, "select distinct scheme from "  # noqa: S608
                         f"{store.relation('analytics', 'customer_segments')}"
                  )["scheme"].tolist()


def _customer_columns(has_predictions: bool) -> str:
    cols = ("c.customer_id, s.segment, s.r_score, s.f_score, s.m_score, c.n_purchases, "
            "c.n_purchase_occasions as orders, c.total_spend, c.last_purchase_date, "
            "c.days_since_last_purchase, c.state_name, c.gender, c.age_band")
    if has_predictions:
        cols += ", cp.clv, cp.p_alive, cp.churn_probability"
    return cols


@cached_query
def segment_customers(store: DataStore, f: Filters, segment: str, has_predictions: bool,
                      limit: int) -> tuple[pd.DataFrame, int]:
    """The customers of one segment in scope, highest spend first, and how many there are."""
    scope = customer_scope(store, f, table="customer_features", segments=True,
                           predictions=has_predictions)
    inner = f"select {_customer_columns(has_predictions)} {scope.sql}"
    params = {**scope.params, "drill_segment": segment}
    df = _frame(store, f"""
        select * from ({inner}) as x where segment = @drill_segment
        order by total_spend desc, customer_id limit @limit""",  # noqa: S608
        {**params, "limit": limit})
    n = _frame(store, f"select count(*) as n from ({inner}) as x "  # noqa: S608
                      "where segment = @drill_segment", params)["n"].iloc[0]
    return df, int(n)


# -- customers ----------------------------------------------------------------------------------


@cached_query
def top_customers(store: DataStore, f: Filters, has_segments: bool, has_predictions: bool,
                  limit: int) -> pd.DataFrame:
    scope = customer_scope(store, f, table="customer_features", segments=has_segments,
                           predictions=has_predictions)
    cols = _customer_columns(has_predictions)
    if not has_segments:
        cols = cols.replace("s.segment, s.r_score, s.f_score, s.m_score, ", "")
    return _frame(store, f"""
        select {cols} {scope.sql}
        order by c.total_spend desc, c.customer_id limit @limit""",  # noqa: S608
        {**scope.params, "limit": limit})


@cached_query
def customer_profile(store: DataStore, customer_id: str, has_segments: bool,
                     has_predictions: bool) -> dict[str, Any] | None:
    """Everything known about one customer, or None when the id is unknown."""
    row = _frame(store, f"""
        select d.*, cf.frequency, cf.recency_days, cf.t_days, cf.days_since_last_purchase,
               cf.monetary_value, cf.n_purchase_occasions
        from {store.relation('marts', 'dim_customers')} as d
        inner join {store.relation('marts', 'customer_features')} as cf
            on cf.customer_id = d.customer_id
        where d.customer_id = @customer_id""", {"customer_id": customer_id})  # noqa: S608
    if row.empty:
        return None
    out = row.iloc[0].to_dict()
    if has_segments:
        seg = _frame(store, f"""
            select scheme, segment, r_score, f_score, m_score, cluster_label
            from {store.relation('analytics', 'customer_segments')}
            where customer_id = @customer_id""", {"customer_id": customer_id})  # noqa: S608
        out["segment"] = seg.iloc[0].to_dict() if len(seg) else None
    if has_predictions:
        pred = _frame(store, f"""
            select clv_method, clv, expected_purchases, expected_avg_spend, p_alive,
                   churn_probability, horizon_months, model_version
            from {store.relation('analytics', 'customer_predictions')}
            where customer_id = @customer_id""", {"customer_id": customer_id})  # noqa: S608
        out["prediction"] = pred.iloc[0].to_dict() if len(pred) else None
    return out


@cached_query
def customer_purchases(store: DataStore, customer_id: str, limit: int) -> pd.DataFrame:
    return _frame(store, f"""
        select f.purchase_date, f.season, p.item_name as item, p.category_name as category,
               f.quantity, f.amount, f.payment_method, f.shipping_type, f.review_rating,
               f.purchase_id
        from {store.relation('marts', 'fct_purchases')} as f
        inner join {store.relation('marts', 'dim_products')} as p
            on p.product_id = f.product_id
        where f.customer_id = @customer_id
        order by f.purchase_date desc, f.source_line desc limit @limit""",  # noqa: S608
        {"customer_id": customer_id, "limit": limit})


# -- predictions --------------------------------------------------------------------------------


@cached_query
def prediction_summary(store: DataStore, f: Filters) -> dict[str, Any]:
    scope = customer_scope(store, f, predictions=True)
    df = _frame(store, f"""
        select count(cp.clv) as customers, sum(cp.clv) as total_clv, avg(cp.clv) as mean_clv,
               max(cp.clv) as max_clv, min(cp.clv) as min_clv,
               max(cp.clv_method) as clv_method, max(cp.horizon_months) as horizon_months,
               max(cp.model_version) as model_version, avg(cp.p_alive) as mean_p_alive,
               count(cp.churn_probability) as with_churn
        {scope.sql}""", scope.params)  # noqa: S608
    return df.iloc[0].to_dict()


@cached_query
def clv_histogram(store: DataStore, f: Filters, bins: int) -> pd.DataFrame:
    """Customers per CLV bin (``bins`` equal-width bins from 0 to the largest CLV)."""
    summary = prediction_summary.uncached(store, f)
    top = float(summary["max_clv"] or 0.0)
    if not summary["customers"] or top <= 0:
        return pd.DataFrame(columns=["bin_start", "bin_end", "customers"])
    width = top / bins
    scope = customer_scope(store, f, predictions=True)
    df = _frame(store, f"""
        select bin, count(*) as customers from (
            select least(cast(floor(cp.clv / @width) as bigint), @last_bin) as bin
            {scope.sql}) as x
        where bin is not null group by bin order by bin""",  # noqa: S608
        {**scope.params, "width": width, "last_bin": bins - 1})
    df["bin_start"] = df["bin"] * width
    df["bin_end"] = df["bin_start"] + width
    return df


@cached_query
def churn_risk(store: DataStore, f: Filters, limit: int) -> pd.DataFrame:
    """Customers most likely to have churned, with the value at stake."""
    scope = customer_scope(store, f, table="customer_features", predictions=True)
    return _frame(store, f"""
        select c.customer_id, cp.churn_probability, cp.p_alive, cp.clv,
               cp.expected_purchases, c.total_spend, c.n_purchase_occasions as orders,
               c.last_purchase_date, c.days_since_last_purchase
        from (select c.customer_id {scope.sql}) as inscope
        inner join {store.relation('marts', 'customer_features')} as c
            on c.customer_id = inscope.customer_id
        inner join {store.relation('analytics', 'customer_predictions')} as cp
            on cp.customer_id = c.customer_id
        where cp.churn_probability is not null
        order by cp.churn_probability desc, c.total_spend desc, c.customer_id
        limit @limit""", {**scope.params, "limit": limit})  # noqa: S608


@cached_query
def model_cards(store: DataStore) -> list[dict[str, Any]]:
    df = _frame(store, f"""
        select model, title, card_json, created_at
        from {store.relation('analytics', 'model_cards')} order by model""")  # noqa: S608
    out = []
    for rec in df.to_dict("records"):
        try:
            rec["card"] = json.loads(rec.pop("card_json") or "{}")
        except (TypeError, ValueError):
            rec["card"] = {"unreadable card_json": True}
        out.append(rec)
    return out


@cached_query
def model_metrics(store: DataStore) -> pd.DataFrame:
    return _frame(store, f"""
        select model, metric, value, baseline, baseline_value
        from {store.relation('analytics', 'model_metrics')}
        order by model, metric""")  # noqa: S608

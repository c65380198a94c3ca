"""Where the floor is for the dashboard's filter change (issue 9, item 3).

The browser benchmark (``bench_dashboard.py``) times a filter change on the Overview from the
click to the re-rendered KPI and chart. This script splits that time on the same published
warehouse and the same six selections (:data:`bench_dashboard.CLICKS`, applied in turn):

- **ours**: the two queries the Overview runs for a new selection (``data.kpis`` and the
  monthly revenue series), uncached, as the dashboard runs them once its filter index is
  built (purchase_patterns.filter_index); **ours by SQL**: the same by SQL alone, as before
  the index is ready or on BigQuery;
- **floor, exact KPIs**: DuckDB alone on the best layout we could give it: one narrow table
  with the filter columns joined in, integer customer keys and day numbers, built once
  beforehand (its build time is reported, not counted). Customers, orders (customer-days),
  revenue and repeat customers exactly, plus the monthly series;
- **floor, additive only**: the same table, but only what adds up (lines, revenue and the
  monthly series): what a pre-aggregated cube could answer without any per-customer work.

Each figure is the median of ``--repeat`` runs on a warm buffer pool. With the browser
benchmark's result (``--browser-json``), the report also gives the part of the click-to-frame
time that is not the queries (Streamlit's rerun, the websocket, Plotly drawing).

    .venv/bin/python bench/dashboard_floor.py --customers 2100000 [--home H]
        [--browser-json bench/.../dashboard.json]   (make bench-dashboard-floor)
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "dashboard"))
sys.path.insert(0, str(REPO / "bench"))

from bench_dashboard import CLICKS, build  # noqa: E402

from purchase_patterns import filter_index  # noqa: E402
from purchase_patterns.datastore import open_store  # noqa: E402
from purchase_patterns.filters import Filters  # noqa: E402
from purchase_patterns.publish import current  # noqa: E402
from purchase_patterns.settings import load_settings  # noqa: E402

import data  # noqa: E402

#: sidebar widget → Filters field and the narrow table's column
FIELDS = {"Category": ("category", "category"), "Season": ("season", "season"),
          "Gender": ("gender", "gender")}

NARROW = """
create table narrow as
select dense_rank() over (order by f.customer_id)::integer as ck,
       (f.purchase_date - date '1970-01-01')::integer as d,
       date_trunc('month', f.purchase_date)::date as m,
       f.amount::double as amount, f.season, p.category_name as category, c.gender
from pub.marts.fct_purchases as f
join pub.marts.dim_products as p on p.product_id = f.product_id
join pub.marts.dim_customers as c on c.customer_id = f.customer_id
"""
EXACT = """
with per_day as (
    select ck, d, sum(amount) as revenue from narrow where {where} group by ck, d),
per_customer as (
    select ck, count(*) as orders, sum(revenue) as revenue from per_day group by ck)
select count(*), sum(orders), sum(revenue), count(*) filter (where orders > 1)
from per_customer
"""
ADDITIVE = "select count(*), sum(amount) from narrow where {where}"
MONTHLY = "select m, count(*), sum(amount) from narrow where {where} group by m"


def selections() -> list[tuple[str, dict[str, tuple[str, ...]]]]:
    """The browser benchmark's selections, each as the sidebar leaves it."""
    out, current_sel = [], {}
    for label, widget, option in CLICKS:
        field = FIELDS[widget][0]
        current_sel = {**current_sel, field: tuple(sorted({*current_sel.get(field, ()), option}))}
        out.append((label, current_sel))
    return out


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    return round(statistics.median(times), 1)


def measure(home: Path, repeat: int) -> dict:
    settings = load_settings(home=home)
    path = current(settings)
    if path is None:
        raise SystemExit(f"{home}: nothing published yet")
    store = open_store(settings, read_only=True, path=path)
    con = duckdb.connect()
    con.execute(f"set threads = {settings.duckdb_threads}")
    con.execute("attach ? as pub (read_only)", [str(path)])
    t0 = time.perf_counter()
    con.execute(NARROW)
    build_s = time.perf_counter() - t0
    rows = con.execute("select count(*) from narrow").fetchone()[0]
    built = filter_index.build(path)
    index = built.index
    data.kpis.uncached(store, Filters())  # warm both, as a running server is
    con.execute(ADDITIVE.format(where="true")).fetchall()
    out = []
    try:
        for label, sel in selections():
            f = Filters(**sel)
            conds, params = [], []
            for field, values in sel.items():
                conds.append(f"{field} in ({', '.join('?' * len(values))})")
                params += list(values)
            where = " and ".join(conds)

            def ours(f=f) -> None:
                if index is not None:
                    index.cache_clear()
                data.uncached(data.kpis, store, index, f)
                data.uncached(data.sales_by_period, store, index, f, "month")

            def ours_sql(f=f) -> None:
                data.kpis.uncached(store, f)
                data.sales_by_period.uncached(store, f, "month")

            def exact(where=where, params=params) -> None:
                con.execute(EXACT.format(where=where), params).fetchall()
                con.execute(MONTHLY.format(where=where), params).fetchall()

            def additive(where=where, params=params) -> None:
                con.execute(ADDITIVE.format(where=where), params).fetchall()
                con.execute(MONTHLY.format(where=where), params).fetchall()

            got = con.execute(EXACT.format(where=where), params).fetchone()
            for ours_kpi in (data.kpis.uncached(store, f), data.uncached(data.kpis, store,
                                                                         index, f)):
                assert (got[0], got[1]) == (ours_kpi["customers"], ours_kpi["orders"]), (
                    got, ours_kpi)
            row = {"change": label, "ours_ms": _median_ms(ours, repeat),
                   "ours_sql_ms": _median_ms(ours_sql, repeat),
                   "floor_exact_ms": _median_ms(exact, repeat),
                   "floor_additive_ms": _median_ms(additive, repeat)}
            out.append(row)
            print(f"{label:24s} ours {row['ours_ms']:7.0f} ms   ours by SQL "
                  f"{row['ours_sql_ms']:7.0f} ms   exact floor "
                  f"{row['floor_exact_ms']:6.0f} ms   additive floor "
                  f"{row['floor_additive_ms']:5.0f} ms", flush=True)
    finally:
        store.close()
        con.close()
        if index is not None:
            index.close()
    return {"rows": rows, "narrow_table_build_s": round(build_s, 1),
            "filter_index_build_s": round(built.seconds, 1), "changes": out,
            **{f"median_{k}": statistics.median(c[k] for c in out)
               for k in ("ours_ms", "ours_sql_ms", "floor_exact_ms", "floor_additive_ms")}}


def main() -> None:
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000,
                    help="customers to generate when --home has no published warehouse")
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--browser-json", type=Path,
                    help="bench_dashboard.py's report on the same warehouse")
    ap.add_argument("--json", type=Path, help="also write the report to this file")
    args = ap.parse_args()
    home = args.home or REPO / "bench" / ".cache" / f"dashboard-{args.customers}"
    build(home, args.customers)  # the same warehouse bench_dashboard.py uses
    report = measure(home, args.repeat)
    if args.browser_json and args.browser_json.exists():
        browser = {c["change"]: c["ms"] for c in
                   json.loads(args.browser_json.read_text())["browser"]["changes"]}
        for c in report["changes"]:
            if c["change"] in browser:
                c["browser_ms"] = browser[c["change"]]
                c["not_queries_ms"] = round(browser[c["change"]] - c["ours_ms"], 1)
        rest = [c["not_queries_ms"] for c in report["changes"] if "not_queries_ms" in c]
        if rest:
            report["median_not_queries_ms"] = statistics.median(rest)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

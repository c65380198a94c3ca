"""Dashboard benchmark: how long a filter change takes to re-render, per page.

Builds (once, cached under ``bench/cache/``) a published warehouse of generated purchases
(about 4.8 lines per customer: ``--customers 2100000`` is the 10M-row case), then replays a
sequence of filter changes:

- **queries**: every query a page runs for the new selection, uncached, on the warm
  read-only store the dashboard uses (what a cache miss costs);
- **rerun**: the whole Overview rerun under ``streamlit.testing`` after changing a sidebar
  widget (queries + figures + Streamlit), which is what the user waits for.

Target (issue 6): a filter change re-renders in <= 300 ms on a 10M-row warehouse.

    .venv/bin/python bench/bench_dashboard.py --customers 100000
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "dashboard"))

from purchase_patterns.datastore import open_store  # noqa: E402
from purchase_patterns.filters import Filters  # noqa: E402
from purchase_patterns.generate import generate  # noqa: E402
from purchase_patterns.pipeline import run_pipeline  # noqa: E402
from purchase_patterns.publish import current  # noqa: E402
from purchase_patterns.settings import load_settings  # noqa: E402

import data  # noqa: E402

#: The sequence a user might click through, one change at a time.
CHANGES: list[tuple[str, dict]] = [
    ("gender=Female", {"gender": ("Female",)}),
    ("+ age 25-44", {"gender": ("Female",), "age_band": ("25-34", "35-44")}),
    ("category=Footwear", {"category": ("Footwear",)}),
    ("season=Winter,Summer", {"season": ("Summer", "Winter")}),
    ("state=CA,TX,NY", {"state": ("California", "New York", "Texas")}),
    ("region=South + subscribed", {"census_region": ("South",), "subscription": True}),
    ("no filters", {}),
]


def page_queries(store, f: Filters, dated: bool) -> dict[str, float]:
    """Seconds each page's queries take for ``f`` (uncached)."""
    pages = {
        "overview": lambda: (data.kpis.uncached(store, f),
                             data.sales_by_period.uncached(store, f, "month") if dated
                             else data.sales_by_season.uncached(store, f)),
        "trends": lambda: (data.sales_by_season.uncached(store, f),
                           *((data.sales_by_period.uncached(store, f, "month"),
                              data.sales_by_weekday.uncached(store, f)) if dated else ()),
                           data.category_by_season.uncached(store, f)),
        "products": lambda: (data.category_performance.uncached(store, f),
                             data.item_performance.uncached(store, f)),
        "geography": lambda: (data.sales_by_state.uncached(store, f, False),
                              data.sales_by_region.uncached(store, f, False)),
        "geography_aov": lambda: (data.sales_by_state.uncached(store, f, True),
                                  data.sales_by_region.uncached(store, f, True)),
        "customers": lambda: data.top_customers.uncached(store, f, False, False,
                                                         data.SHOW_LIMIT),
    }
    out = {}
    for name, run in pages.items():
        t0 = time.perf_counter()
        run()
        out[name] = time.perf_counter() - t0
    return out


def build(home: Path, customers: int) -> Path:
    settings = load_settings(home=home)
    if current(settings) is None:
        src = home / "input" / f"bench_{customers}.csv.gz"
        src.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        generate(src, customers, seed=11)
        summary = run_pipeline(settings, [src])
        assert summary.exit_code == 0, summary.errors
        print(f"built {home} in {time.perf_counter() - t0:.0f}s", flush=True)
    return current(settings)


def rerun_times(home: Path) -> list[tuple[str, float]]:
    """Overview reruns under streamlit.testing after each sidebar change."""
    import os

    from streamlit import config
    from streamlit.testing.v1 import AppTest

    os.environ["PURCHASE_PATTERNS_HOME"] = str(home)
    config.set_option("server.address", "127.0.0.1")
    at = AppTest.from_file(str(REPO / "dashboard" / "streamlit_app.py"), default_timeout=600)
    at.run()
    out = []
    steps = [("gender=Female", "filter_gender", ["Female"]),
             ("+ category=Footwear", "filter_category", ["Footwear"]),
             ("+ season=Winter", "filter_season", ["Winter"]),
             ("- gender", "filter_gender", []),
             ("+ state=Texas", "filter_state", ["Texas"])]
    for label, key, value in steps:
        widget = at.multiselect(key=key).set_value(value)
        t0 = time.perf_counter()
        widget.run()
        out.append((label, time.perf_counter() - t0))
        assert not at.exception, [e.value for e in at.exception]
    return out


def main() -> None:
    logging.getLogger("streamlit").setLevel(logging.ERROR)  # "no runtime" notes outside a server
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--home", type=Path, default=None)
    args = ap.parse_args()
    home = args.home or REPO / "bench" / "cache" / f"dashboard-{args.customers}"
    path = build(home, args.customers)
    settings = load_settings(home=home)
    store = open_store(settings, read_only=True, path=path)
    rows = int(store.query("select count(*) as n from marts.fct_purchases")["n"].iloc[0])
    dated = bool(store.query("select count(purchase_date) > 0 as d from "
                             "marts.fct_purchases")["d"].iloc[0])
    page_queries(store, Filters(), dated)  # warm the buffer pool as a running server has it
    results: dict[str, list[float]] = {}
    for label, kwargs in CHANGES:
        runs = [page_queries(store, Filters(**kwargs), dated) for _ in range(args.repeat)]
        for page in runs[0]:
            results.setdefault(page, []).append(statistics.median(r[page] for r in runs))
        print(f"{label:28s} " + "  ".join(f"{p} {1000 * statistics.median(r[p] for r in runs):6.0f}ms"
                                          for p in runs[0]), flush=True)
    store.close()
    reruns = rerun_times(home)
    for label, seconds in reruns:
        print(f"overview rerun after {label:22s} {1000 * seconds:6.0f} ms", flush=True)
    report = {
        "rows": rows, "customers": args.customers, "dated": dated,
        "page_queries_ms": {p: {"median": round(1000 * statistics.median(v)),
                                "max": round(1000 * max(v))} for p, v in results.items()},
        "overview_rerun_ms": {label: round(1000 * s) for label, s in reruns},
        "target_ms": 300,
    }
    out = home / "bench_dashboard.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Our analytics over the marts doing the pandas script's work (``pandas_pipeline.py``) and
nothing more: RFM scores, seasonal aggregates and the BG/NBD fit, each through the package's
own functions, on a warehouse that ``purchase-patterns run`` built and published (read-only).

- RFM: ``insights.segments.load_customers`` (``marts.customer_features``) and
  ``rfm_segments``, as the analyze stage scores customers;
- seasonal: ``insights.trends.seasons`` and ``calendar(month)`` (revenue, purchases and
  distinct customers per season and per month, with the peaks), and ``preferences`` (category
  and item shares by season and by every other dimension: more than the script's category x
  season table, so this side is not flattered);
- BG/NBD: ``predict.data.btyd_counts`` (frequency, recency and T as of the last purchase
  date, which the transform computed into ``marts.customer_features``, grouped into distinct
  rows in the warehouse) and ``predict.bgnbd.fit`` with those counts as weights (the whole
  period, as the script fits; the same estimates as fitting every customer's row).

The full ``predict`` and ``analyze`` stages do much more (churn and propensity models with
validation, Gamma-Gamma and CLV, clusters, recommendations, writing and publishing tables);
the harness reports them separately. This script is the like-for-like half of the
comparison the issue asks for ("our analytics over the marts" against "the pandas script's
equivalent work"). Its RFM score counts and season totals are reported so the harness can
check they equal the script's.

    python bench/ours_analytics.py --home HOME [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from purchase_patterns.datastore import store
from purchase_patterns.insights import segments, trends
from purchase_patterns.insights.context import new_context
from purchase_patterns.predict import bgnbd, data
from purchase_patterns.publish import current
from purchase_patterns.settings import load_settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--json", type=Path, help="also write the summary to this file")
    args = ap.parse_args()
    settings = load_settings(home=args.home)
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    with store(settings, read_only=True, path=current(settings)) as s:
        ctx = new_context(s, settings)
        t["profile"] = time.perf_counter() - t0
        customers = segments.load_customers(ctx)
        rfm, _cuts = segments.rfm_segments(ctx, customers)
        del customers
        t["rfm"] = time.perf_counter() - t0 - sum(t.values())
        span = data.span(s)
        season = trends.seasons(ctx, (span.first, span.last))
        months = trends.calendar(ctx, "month")
        prefs = trends.preferences(ctx, have_segments=False)
        t["seasonal"] = time.perf_counter() - t0 - sum(t.values())
        counts = data.btyd_counts(s, ctx.profile)
        if counts is None:
            raise SystemExit("ours_analytics: the warehouse has undated purchase lines")
        x, t_x, T, n = counts
        fit = bgnbd.fit(x, t_x, T, weights=n)
        t["bgnbd"] = time.perf_counter() - t0 - sum(t.values())
    out = {
        "customers": len(rfm), "months": len(months), "preference_rows": len(prefs),
        "rfm_counts": {col: {str(k): int(v) for k, v in
                             rfm[col].value_counts().sort_index().items()}
                       for col in ("r_score", "f_score", "m_score")},
        "season_totals": {str(r.period_key): {"revenue": round(float(r.revenue), 2),
                                              "purchases": int(r.purchases)}
                          for r in season.itertuples()},
        "bgnbd": {k: round(float(v), 4) for k, v in asdict(fit.params).items()},
        "seconds": {k: round(v, 3) for k, v in t.items()},
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

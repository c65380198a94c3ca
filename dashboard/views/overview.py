"""Overview: headline KPIs for the current filters, data-quality status, the last run,
what the data supports, and the top recommendations."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import components as ui
import data

ctx = ui.context()
key, cat, f = ctx.source.key, ctx.catalog, ctx.filters

st.title("Overview")
ui.scope_caption(f)
k = data.kpis(key, f)
cols = st.columns(5)
cols[0].metric("Customers", ui.count(k["customers"]))
cols[1].metric("Revenue", ui.money(k["revenue"]))
cols[2].metric("Orders", ui.count(k["orders"]), help="Purchase occasions: a customer's "
               "purchase day (every purchase line when the data has no dates).")
cols[3].metric("Average order value", ui.money2(k["aov"]))
if cat.dated:
    cols[4].metric("Repeat rate", ui.pct(k["repeat_rate"]),
                   help="Share of customers with more than one order.")
else:
    cols[4].metric("Repeat rate", "n/a", help="The data has no purchase dates: one purchase "
                   "per customer is observed, so repeat purchases cannot be measured.")

if cat.dated:
    series = data.sales_by_period(key, f, "month")
    x, title = series["period"], "Revenue by month"
else:
    series = data.sales_by_season(key, f)
    x, title = series["season"].astype(str), "Revenue by season"
# graph_objects, not plotly.express: the same bars without express's ~20 ms per figure, on
# the page whose filter changes are timed
fig = go.Figure(go.Bar(x=x, y=series["revenue"], hovertemplate="%{x}: $%{y:,.0f}"
                       "<extra></extra>"),
                layout={"title": {"text": title}, "yaxis": {"title": {"text": "Revenue ($)"}}})
ui.chart(fig, "overview_revenue")

left, right = st.columns(2)
with left:
    st.subheader("Data quality")
    if cat.has("quality.dq_results"):
        checks = data.quality_checks(key)
        status = data.quality_status(checks)
        counts = checks["status"].value_counts().to_dict()
        text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        {"passed": st.success, "warnings": st.warning, "failed": st.error}.get(
            status, st.info)(f"Checks {status}: {text} (see Data quality).")
    else:
        ui.explain("No data-quality results: `quality.dq_results` is written by the "
                   "transform stage.")
with right:
    st.subheader("Last run")
    if cat.has("meta.runs"):
        runs = data.runs(key, 1)
        if len(runs):
            r = runs.iloc[0]
            st.markdown(f"**{r['run_id']}** ({r['command']}): {r['status']}, finished "
                        f"{ui.when(r['finished_at'])} UTC")
            st.caption(r.get("stages", ""))
    else:
        ui.explain("No run log in this warehouse.")

st.subheader("What this data supports")
ui.scope_caption(f, applies=False, what="decided from all the data")
if cat.analyses:
    ui.table(pd.DataFrame(list(cat.analyses)), "analyses")
else:
    ui.table(pd.DataFrame([{"analysis": d.analysis, "supported": d.supported,
                                 "reason": d.reason} for d in cat.decisions]), "capabilities")

st.subheader("Recommendations")
if cat.has("analytics.recommendations"):
    ui.scope_caption(f, applies=False, what="recommendations are computed on all the data")
    ui.table(data.recommendations(key, 10), "recommendations")
else:
    ui.explain(cat.missing("analytics.recommendations", "analyze"))

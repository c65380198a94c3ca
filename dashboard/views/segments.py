"""Segments: the R×F grid (RFM) or a treemap (snapshot segments), the segment table with
size, revenue share and CLV, and a drill-down to the customers of one segment."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

import components as ui
import data

ctx = ui.context()
key, cat, f = ctx.source.key, ctx.catalog, ctx.filters

st.title("Segments")
if not cat.has("analytics.customer_segments"):
    ui.explain("Segments are computed by the analyze stage; this warehouse has none yet "
               "(`analytics.customer_segments` is missing).")
    for analysis in ("rfm_segments", "snapshot_segments"):
        d = cat.decision(analysis)
        if d is not None:
            st.caption(f"{analysis}: {'supported' if d.supported else 'not supported'} — "
                       f"{d.reason}.")
    st.stop()

ui.scope_caption(f)
has_pred = cat.has("analytics.customer_predictions")
segments = data.segment_table(key, f, has_pred)
schemes = data.segment_schemes(key)
rf = data.rf_grid(key, f)

left, right = st.columns([3, 2])
with left:
    if len(rf):
        grid = rf.pivot(index="f_score", columns="r_score", values="customers").sort_index(
            ascending=False)
        fig = px.imshow(grid, text_auto=True, aspect="auto", color_continuous_scale="Blues",
                        labels={"x": "Recency score (5 = most recent)",
                                "y": "Frequency score", "color": "Customers"},
                        title="Customers by recency × frequency score")
        fig.update_xaxes(type="category")
        fig.update_yaxes(type="category")
        ui.chart(fig, "rf_grid")
    else:
        fig = px.treemap(segments, path=["segment"], values="customers", color="revenue",
                         color_continuous_scale="Blues",
                         title="Segments by customers (colour: revenue)")
        fig.update_traces(root_color="#f0f2f6")
        ui.chart(fig, "segment_treemap")
        st.caption(f"Scheme: {', '.join(schemes)}. Without purchase dates there is no recency, "
                   "so no R×F grid is drawn.")
with right:
    fig = px.bar(segments, x="revenue_share" if "revenue_share" in segments else
                 "share_of_revenue", y="segment", orientation="h",
                 title="Share of revenue", labels={"share_of_revenue": "", "segment": ""})
    fig.update_xaxes(tickformat=".0%")
    fig.update_yaxes(categoryorder="total ascending")
    ui.chart(fig, "segment_revenue_share")

st.subheader("Segment table")
if not has_pred:
    st.caption("Average CLV needs `analytics.customer_predictions` (the predict stage); "
               "this warehouse has none yet.")
ui.table(segments[["segment", "customers", "share_of_customers", "revenue",
                   "share_of_revenue", "avg_clv", "description"]], "segments",
         column_config={"share_of_customers": st.column_config.NumberColumn(format="percent"),
                        "share_of_revenue": st.column_config.NumberColumn(format="percent"),
                        "revenue": st.column_config.NumberColumn(format="dollar"),
                        "avg_clv": st.column_config.NumberColumn("avg CLV", format="dollar")})

st.subheader("Customers of a segment")
choice = st.selectbox("Segment", segments["segment"].tolist(), key="drill_segment")
if choice:
    customers, total = data.segment_customers(key, f, choice, has_pred, data.EXPORT_LIMIT)
    st.caption(f"{total:,} customers in {choice} for the current filters; lifetime figures. "
               "Columns this data cannot fill (e.g. recency without dates) are left out.")
    ui.table(customers.dropna(axis=1, how="all"), "segment_customers", total=total)

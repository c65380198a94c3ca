"""Trends: seasonal revenue, monthly and weekly series (dated data) with peaks marked, and
category by season."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

import components as ui
import data

ctx = ui.context()
key, cat, f = ctx.source.key, ctx.catalog, ctx.filters

st.title("Trends")
ui.scope_caption(f)
peaks = data.trend_peaks(key) if cat.has("analytics.trend_periods") else pd.DataFrame()


def mark_peaks(fig: go.Figure, series: pd.DataFrame, x: str, grain: str) -> None:
    """Mark the analyze stage's peaks when unfiltered; under filters, the highest period."""
    if f.is_empty and len(peaks):
        rows = peaks[peaks["grain"] == grain]
        if grain == "season":
            marked = series[series[x].astype(str).isin(rows["period"].astype(str))]
        else:
            marked = series[series[x].isin(pd.to_datetime(rows["period_start"]))]
        method = rows["peak_method"].iloc[0] if len(rows) else ""
        label = f"peak ({method})" if method else "peak"
    else:
        marked = series.nlargest(1, "revenue")
        label = "highest" + (" under these filters" if not f.is_empty else "")
    if len(marked):
        fig.add_trace(go.Scatter(x=marked[x], y=marked["revenue"], mode="markers+text",
                                 text=[label] * len(marked), textposition="top center",
                                 marker={"size": 12, "color": "#d62728", "symbol": "star"},
                                 name=label))


st.subheader("By season")
seasons = data.sales_by_season(key, f)
seasons = seasons[seasons["n_purchases"] > 0]
if seasons.empty or (seasons["season"].astype(str) == "Unknown").all():
    ui.explain("No season on these purchases (neither a season column nor dates).")
else:
    fig = px.bar(seasons, x="season", y="revenue", labels={"season": "", "revenue": "Revenue ($)"},
                 hover_data=["n_purchases", "n_customers", "share_of_revenue"])
    mark_peaks(fig, seasons.assign(season=seasons["season"].astype(str)), "season", "season")
    ui.chart(fig, "trend_season")
    ui.table(seasons, "sales_by_season")

st.subheader("Monthly and weekly")
if not ui.unsupported(cat, "calendar_trends", "Monthly, weekly and weekday series are empty"):
    grain = st.radio("Grain", ["month", "week"], horizontal=True, key="trend_grain")
    series = data.sales_by_period(key, f, grain)
    if series.empty:
        ui.explain("No dated purchases under these filters.")
    else:
        fig = px.line(series, x="period", y="revenue", markers=grain == "month",
                      labels={"period": "", "revenue": "Revenue ($)"})
        mark_peaks(fig, series, "period", grain)
        ui.chart(fig, f"trend_{grain}")
        ui.table(series.assign(period=series["period"].dt.date), f"sales_by_{grain}")
    weekday = data.sales_by_weekday(key, f)
    if len(weekday):
        fig = px.bar(weekday, x="day", y="revenue", title="Revenue by day of week",
                     labels={"day": "", "revenue": "Revenue ($)"})
        ui.chart(fig, "trend_weekday")

st.subheader("Category by season")
mix = data.category_by_season(key, f)
if mix.empty or mix["category"].nunique() < 2 and (mix["category"] == "Unknown").all():
    ui.explain("No product categories in this data.")
else:
    fig = px.bar(mix, x="season", y="revenue", color="category", barmode="stack",
                 labels={"season": "", "revenue": "Revenue ($)"},
                 hover_data=["share_within_season", "n_purchases"])
    ui.chart(fig, "category_by_season")
    ui.table(mix, "category_by_season")

"""Geography: a US choropleth by state (revenue, customers or average order value) and
Census region roll-ups."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from purchase_patterns.geo import us_states_geojson

import components as ui
import data

ctx = ui.context()
key, cat, f = ctx.source.key, ctx.catalog, ctx.filters

st.title("Geography")
if ui.unsupported(cat, "geography", "No map"):
    st.stop()
ui.scope_caption(f)
st.caption("By the state stated on each purchase line.")

metrics = {"Revenue": ("revenue", "$,.0f"), "Customers": ("n_customers", ",d"),
           "Average order value": ("aov", "$,.2f")}
label = st.radio("Colour states by", list(metrics), horizontal=True, key="geo_metric")
column, fmt = metrics[label]
orders = column == "aov"  # orders cost a second aggregation: only when shown
states = data.sales_by_state(key, f, orders)
if states.empty:
    ui.explain("No purchases with a US state under these filters.")
else:
    fig = go.Figure(go.Choropleth(
        geojson=us_states_geojson(), locations=states["state_code"], z=states[column],
        featureidkey="id", colorscale="Blues", marker_line_color="#9aa5b1",
        marker_line_width=0.5,
        text=states["state_name"], colorbar={"title": {"text": label}},
        hovertemplate="%{text}<br>" + label + ": %{z:" + fmt + "}<extra></extra>"))
    fig.update_geos(scope="usa", visible=False)
    fig.update_layout(title=f"{label} by state", height=520)
    ui.chart(fig, "state_map")

regions = data.sales_by_region(key, f, orders)
st.subheader("Census regions")
fig = px.bar(regions, x="census_region", y=column, labels={"census_region": "", column: label},
             hover_data=["n_purchases", "share_of_revenue"])
ui.chart(fig, "region_bars")
money = st.column_config.NumberColumn(format="dollar")
ui.table(regions, "sales_by_region", column_config={"revenue": money, "aov": money})
st.subheader("States")
ui.table(states, "sales_by_state", column_config={"revenue": money, "aov": money})

"""Predictions: CLV distribution, churn-risk list, model cards and holdout metrics."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

import components as ui
import data

ctx = ui.context()
key, cat, f = ctx.source.key, ctx.catalog, ctx.filters

st.title("Predictions")
if not cat.has("analytics.customer_predictions"):
    ui.explain("Predictions are computed by the predict stage; this warehouse has none yet "
               "(`analytics.customer_predictions` is missing).")
    for analysis in ("clv_bgnbd_gamma_gamma", "clv_heuristic", "churn_classifier"):
        d = cat.decision(analysis)
        if d is not None:
            st.caption(f"{analysis}: {'supported' if d.supported else 'not supported'} — "
                       f"{d.reason}.")
    st.stop()

ui.scope_caption(f)
summary = data.prediction_summary(key, f)
method = summary["clv_method"]
heuristic = method == "heuristic_snapshot"
cols = st.columns(4)
cols[0].metric("Customers with a CLV", ui.count(summary["customers"]))
cols[1].metric(f"Total CLV ({ui.count(summary['horizon_months'])} months)",
               ui.money(summary["total_clv"]))
cols[2].metric("Mean CLV", ui.money2(summary["mean_clv"]))
cols[3].metric("Mean P(alive)", ui.pct(summary["mean_p_alive"]) if not heuristic else "n/a")
if heuristic:
    st.warning("These CLVs are a heuristic (stated cadence × spend × horizon) because the data "
               "has no purchase dates; they are not a validated model.", icon=":material/warning:")
st.caption(f"Method: {method} · model version {summary['model_version']}")

st.subheader("CLV distribution")
hist = data.clv_histogram(key, f, 40)
if hist.empty:
    ui.explain("No CLV values in scope.")
else:
    hist["range"] = hist["bin_start"].map("${:,.0f}".format) + "–" + hist["bin_end"].map(
        "${:,.0f}".format)
    fig = px.bar(hist, x="bin_start", y="customers", hover_data=["range"],
                 labels={"bin_start": "CLV ($)", "customers": "Customers"})
    fig.update_traces(width=float(hist["bin_end"].iloc[0] - hist["bin_start"].iloc[0]) * 0.95)
    ui.chart(fig, "clv_histogram")

st.subheader("Churn risk")
if not summary["with_churn"]:
    ui.explain("No churn probabilities: they need dated purchases (a snapshot has no "
               "purchase history to tell active customers from lapsed ones).")
else:
    risk = data.churn_risk(key, f, data.SHOW_LIMIT)
    st.caption(f"The {len(risk):,} customers in scope most likely to have churned.")
    ui.table(risk, "churn_risk",
             column_config={"churn_probability": st.column_config.ProgressColumn(
                 "churn probability", min_value=0.0, max_value=1.0, format="percent")})

st.subheader("Models")
ui.scope_caption(f, applies=False, what="models are fitted and validated on all the data")
if cat.has("analytics.model_metrics"):
    metrics = data.model_metrics(key)
    if len(metrics):
        long = metrics.melt(id_vars=["model", "metric", "baseline"],
                            value_vars=["value", "baseline_value"], var_name="which",
                            value_name="score")
        long["which"] = long["which"].map({"value": "model", "baseline_value": "baseline"})
        fig = px.bar(long, x="metric", y="score", color="which", barmode="group",
                     facet_col="model", title="Holdout metrics: model vs baseline")
        ui.chart(fig, "model_metrics")
    ui.table(metrics, "model_metrics")
else:
    ui.explain(cat.missing("analytics.model_metrics", "predict"))
if cat.has("analytics.model_cards"):
    for card in data.model_cards(key):
        with st.expander(f"Model card: {card['title'] or card['model']}"):
            st.json(card["card"])
else:
    ui.explain(cat.missing("analytics.model_cards", "predict"))

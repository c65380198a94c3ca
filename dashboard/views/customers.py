"""Customers: look up a customer id for their profile, purchases, segment, CLV and
P(alive); the top customers in the current filters."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import components as ui
import data

ctx = ui.context()
key, cat, f = ctx.source.key, ctx.catalog, ctx.filters
has_seg = cat.has("analytics.customer_segments")
has_pred = cat.has("analytics.customer_predictions")

st.title("Customers")
customer_id = st.text_input("Customer id", key="customer_id",
                            placeholder="e.g. a customer id from the table below").strip()
if customer_id:
    profile = data.customer_profile(key, customer_id, has_seg, has_pred)
    if profile is None:
        st.warning(f"No customer with id {customer_id!r} in this warehouse.")
    else:
        st.caption("A single customer's profile covers all their purchases (filters do not "
                   "apply).")
        cols = st.columns(4)
        cols[0].metric("Lifetime spend", ui.money2(profile["total_spend"]))
        cols[1].metric("Orders", ui.count(profile["n_purchase_occasions"]))
        pred = profile.get("prediction")
        seg = profile.get("segment")
        cols[2].metric("Segment", seg["segment"] if seg else "–",
                       help=None if has_seg else "No segments in this warehouse yet.")
        if pred:
            cols[3].metric(f"CLV ({pred['horizon_months']} months)", ui.money2(pred["clv"]),
                           help=f"Method: {pred['clv_method']}")
        else:
            cols[3].metric("CLV", "–", help="No prediction for this customer (the predict "
                           "stage has not run or did not cover them).")
        if pred:
            p_alive = pred.get("p_alive")
            st.markdown(
                f"**P(alive):** {ui.pct(p_alive) if p_alive is not None else 'n/a'}"
                + ("" if p_alive is not None else " (a snapshot without dates has no "
                   "purchase history to estimate it from)")
                + f" · **churn probability:** {ui.pct(pred.get('churn_probability'))}"
                + f" · **expected orders:** {pred.get('expected_purchases', 0) or 0:.2f}")
        details = {k: v for k, v in profile.items() if k not in ("prediction", "segment")}
        ui.table(pd.DataFrame({"field": list(details),
                               "value": [str(v) for v in details.values()]}),
                 "customer_profile")
        st.subheader("Purchases")
        ui.table(data.customer_purchases(key, customer_id, data.EXPORT_LIMIT).dropna(
            axis=1, how="all"), "customer_purchases")

st.subheader("Top customers")
ui.scope_caption(f)
st.caption("Customers in scope, by lifetime spend.")
ui.table(data.top_customers(key, f, has_seg, has_pred, data.SHOW_LIMIT).dropna(
    axis=1, how="all"), "top_customers")

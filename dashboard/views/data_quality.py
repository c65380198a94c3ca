"""Data quality: the checks of the latest run, rejected rows with reasons, loads and run
history."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

import components as ui
import data

ctx = ui.context()
key, cat, f = ctx.source.key, ctx.catalog, ctx.filters

st.title("Data quality")
ui.scope_caption(f, applies=False, what="checks and rejects describe whole loads")

st.subheader("Checks")
if cat.has("quality.dq_results"):
    checks = data.quality_checks(key)
    status = data.quality_status(checks)
    counts = checks.groupby(["status", "severity"]).size().reset_index(name="checks")
    {"passed": st.success, "warnings": st.warning, "failed": st.error}.get(status, st.info)(
        f"{len(checks)} checks in run {checks['run_id'].iloc[0] if len(checks) else '–'}: "
        f"{status}.")
    fig = px.bar(counts, x="status", y="checks", color="severity", barmode="stack")
    ui.chart(fig, "check_counts")
    ui.table(checks.drop(columns=["run_id"]), "quality_checks")
else:
    ui.explain("No data-quality results: `quality.dq_results` is written by the transform "
               "stage.")

st.subheader("Rejected rows")
if cat.has("raw.rejects"):
    reasons, rows, total = data.rejects(key, data.EXPORT_LIMIT)
    if total == 0:
        st.success("No row was rejected.")
    else:
        st.caption(f"{total:,} rejected rows, by reason:")
        ui.table(reasons, "reject_reasons")
        ui.table(rows, "rejected_rows", total=total)
else:
    ui.explain("No reject table in this warehouse.")

st.subheader("Loads")
if cat.has("raw.batches"):
    ui.table(data.batches(key), "batches")

st.subheader("Run history")
if cat.has("meta.runs"):
    ui.table(data.runs(key, 50), "runs")

"""Products: category and item performance, and affinity (lift) between attributes or
items bought together."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

import components as ui
import data

ctx = ui.context()
key, cat, f = ctx.source.key, ctx.catalog, ctx.filters

st.title("Products")
ui.scope_caption(f)
money = st.column_config.NumberColumn(format="dollar")
share = st.column_config.NumberColumn(format="percent")

st.subheader("Categories")
cats = data.category_performance(key, f)
fig = px.bar(cats, x="category", y="revenue", labels={"category": "", "revenue": "Revenue ($)"},
             hover_data=["n_purchases", "avg_spend", "avg_review_rating"])
ui.chart(fig, "category_revenue")
ui.table(cats, "category_performance",
         column_config={"revenue": money, "avg_spend": money, "share_of_revenue": share})

st.subheader("Items")
items = data.item_performance(key, f)
top = items.head(20)
fig = px.bar(top, x="revenue", y="item", color="category", orientation="h",
             title=f"Top {len(top)} items by revenue", labels={"item": "", "revenue": "Revenue ($)"})
fig.update_yaxes(categoryorder="total ascending")
ui.chart(fig, "item_revenue")
ui.table(items, "item_performance",
         column_config={"revenue": money, "avg_spend": money, "share_of_revenue": share})

st.subheader("Affinity")
if not cat.has("analytics.affinity"):
    ui.explain(cat.missing("analytics.affinity", "analyze"))
else:
    ui.scope_caption(f, applies=False, what="association rules are mined on all purchases by "
                     "the analyze stage")
    kinds = {"Items bought together": "item_pair", "Category with attributes": "attribute"}
    label = st.radio("Rules", list(kinds), horizontal=True, key="affinity_kind")
    rules = data.affinity(key, kinds[label], 200)
    analysis = "item_pair_affinity" if kinds[label] == "item_pair" else "attribute_affinity"
    if rules.empty:
        if not ui.unsupported(cat, analysis, "No rules of this kind"):
            ui.explain("The analyze stage found no rules of this kind.")
    else:
        rules["rule"] = rules["antecedent"] + " → " + rules["consequent"]
        fig = px.bar(rules.head(15), x="lift", y="rule", orientation="h",
                     hover_data=["support", "confidence", "n"],
                     title="Strongest rules by lift (1 = independent)")
        fig.update_yaxes(categoryorder="total ascending")
        fig.add_vline(x=1, line_dash="dot")
        ui.chart(fig, "affinity")
        ui.table(rules.drop(columns="rule"), f"affinity_{kinds[label]}")

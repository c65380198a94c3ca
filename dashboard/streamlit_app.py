"""purchase-patterns dashboard: the router.

Run it with ``purchase-patterns dashboard`` (serves 127.0.0.1 and prints the URL). Every
rerun resolves, once, the published warehouse to read, what it holds, and the global
filters from the sidebar, then hands them to the selected page (``views/``; not ``pages/``, which Streamlit would also serve as legacy stand-alone pages that bypass this router).
"""

from __future__ import annotations

import streamlit as st

from purchase_patterns.errors import PurchasePatternsError

import components as ui
import data

st.set_page_config(page_title="Purchase patterns", page_icon="📈",
                   layout="wide")

try:
    settings = data.settings()
except PurchasePatternsError as exc:
    st.error(str(exc))
    st.stop()
ui.require_access(settings)

source = data.source(settings)
if source is None:
    st.title("Purchase patterns")
    st.info(f"No published warehouse under {settings.home}: run `purchase-patterns run` "
            "(a warehouse is published when a run succeeds). This page reloads it on the "
            "next interaction.", icon=":material/hourglass_empty:")
    st.stop()

catalog = data.catalog(source.key)
if not catalog.has("marts.fct_purchases"):
    st.title("Purchase patterns")
    st.error(f"{source.label} has no marts: the transform stage did not build them.")
    st.stop()

filters = ui.filter_sidebar(source, catalog)
ui.report_button(filters)
st.sidebar.caption(f"Data: {source.label}")
ui.index_caption(source)
ui.set_context(ui.Context(source, catalog, filters))

PAGES = [
    st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("views/segments.py", title="Segments", icon=":material/groups:"),
    st.Page("views/trends.py", title="Trends", icon=":material/timeline:"),
    st.Page("views/products.py", title="Products", icon=":material/category:"),
    st.Page("views/geography.py", title="Geography", icon=":material/map:"),
    st.Page("views/customers.py", title="Customers", icon=":material/person_search:"),
    st.Page("views/predictions.py", title="Predictions", icon=":material/query_stats:"),
    st.Page("views/data_quality.py", title="Data quality", icon=":material/fact_check:"),
]
st.navigation(PAGES).run()

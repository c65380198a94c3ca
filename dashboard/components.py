"""Widgets shared by the pages: the page context (source, catalog, filters), the global
filter sidebar, tables with a CSV download, charts, number formats and the access gate.

UI only: data comes from :mod:`data`, filters are :class:`purchase_patterns.filters.Filters`.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
import streamlit as st

from purchase_patterns.errors import PurchasePatternsError
from purchase_patterns.exports import to_csv_bytes
from purchase_patterns.filters import Filters
from purchase_patterns.settings import Settings

import data

#: Plotly fetches a base-map file for geo charts; the app serves a blank one from
#: ``static/`` (the state outlines travel inside the figure), so maps work offline.
PLOTLY_CONFIG = {"displaylogo": False, "topojsonURL": "app/static/"}
_CONTEXT = "_pp_context"


@dataclass(frozen=True)
class Context:
    """What every page needs, resolved once per script run by the router."""

    source: data.Source
    catalog: data.Catalog
    filters: Filters


def set_context(ctx: Context) -> None:
    st.session_state[_CONTEXT] = ctx


def context() -> Context:
    """The context the router resolved for this run."""
    ctx = st.session_state.get(_CONTEXT)
    if ctx is None:  # a page opened without the router (cannot happen through navigation)
        st.error("Open the dashboard through its main page.")
        st.stop()
    return ctx


# -- access -------------------------------------------------------------------------------------


def _is_loopback(address: str | None) -> bool:
    if not address:
        return False  # Streamlit's default binds every interface
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def require_access(settings: Settings) -> None:
    """Stop unless the app is safe to show: bound to loopback, or password-protected and
    the password entered in this session."""
    password = settings.dashboard.password
    if password is None:
        if not _is_loopback(st.get_option("server.address")):
            st.error("This dashboard is served on a non-loopback address without a password. "
                     "Set PURCHASE_PATTERNS_DASHBOARD__PASSWORD or bind 127.0.0.1.")
            st.stop()
        return
    if st.session_state.get("_pp_authenticated"):
        return
    st.title("Purchase patterns")
    entered = st.text_input("Password", type="password", key="_pp_password")
    if entered:
        if hmac.compare_digest(entered.encode(), password.get_secret_value().encode()):
            st.session_state["_pp_authenticated"] = True
            del st.session_state["_pp_password"]
            st.rerun()
        st.error("Wrong password.")
    st.stop()


# -- global filters -----------------------------------------------------------------------------


def _multiselect(label: str, key: str, options: list[Any], hidden: list[str]) -> tuple:
    if not options:
        hidden.append(label.lower())
        return ()
    return tuple(st.multiselect(label, options, key=f"filter_{key}", placeholder="All"))


def filter_sidebar(source: data.Source, catalog: data.Catalog) -> Filters:
    """Draw the global filters in the sidebar and return the selection. Only filters the
    data supports are offered; the others are listed with the reason."""
    has_segments = catalog.has("analytics.customer_segments")
    opts = data.filter_options(source.key, has_segments)
    hidden: list[str] = []
    st.sidebar.header("Filters")
    with st.sidebar:
        date_from = date_to = None
        if catalog.dated and opts["date_from"] and opts["date_to"]:
            lo, hi = opts["date_from"], opts["date_to"]
            picked = st.date_input("Purchase dates", value=(lo, hi), min_value=lo,
                                   max_value=hi, key="filter_dates")
            if isinstance(picked, tuple | list) and len(picked) == 2:
                date_from = picked[0] if picked[0] != lo else None
                date_to = picked[1] if picked[1] != hi else None
        else:
            hidden.append("purchase dates")
        season = _multiselect("Season", "season", opts["season"], hidden)
        category = _multiselect("Category", "category", opts["category"], hidden)
        census_region = _multiselect("Region", "census_region", opts["census_region"], hidden)
        state = _multiselect("State", "state", opts["state"], hidden)
        gender = _multiselect("Gender", "gender", opts["gender"], hidden)
        age_band = _multiselect("Age band", "age_band", opts["age_band"], hidden)
        segment = _multiselect("Segment", "segment", opts["segment"], hidden)
        subscription = None
        if len(opts["subscription"]) == 2:
            choice = st.radio("Subscription", ["All", "Subscribed", "Not subscribed"],
                              horizontal=True, key="filter_subscription")
            subscription = {"All": None, "Subscribed": True, "Not subscribed": False}[choice]
        else:
            hidden.append("subscription")
        if hidden:
            st.caption("Not offered for this data (no values): " + ", ".join(hidden) + ".")
    return Filters(season=season, category=category, state=state, census_region=census_region,
                   gender=gender, age_band=age_band, segment=segment,
                   subscription=subscription, date_from=date_from, date_to=date_to)


def index_caption(source: data.Source) -> None:
    """Whether filtered headline figures come from the fast filter index yet."""
    slot = data.index_slot(source.key)
    if slot is None:
        return
    text = {"building": "being built; figures come from SQL until it is ready",
            "ready": "ready", "unavailable": "not available for this data",
            "failed": "could not be built; figures come from SQL"}[slot.state]
    st.sidebar.caption(f"Fast filters: {text}" + (f" ({slot.detail})" if slot.detail else ""))


def report_button(filters: Filters) -> None:
    """"Download report": build the stakeholder report for the current filters, then offer
    it for download. Disabled, with the reason, when the report builder is not installed."""
    build = data.report_builder()
    if build is None:
        st.sidebar.button(
            "Download report", disabled=True, key="download_report",
            help="The stakeholder report builder (purchase_patterns.report) is not part of "
                 "this installation, so no report can be built from the dashboard.")
        return
    built = st.session_state.get("_pp_report")
    if built and built[0] == filters:
        st.sidebar.download_button("Save report (HTML)", data=built[1],
                                   file_name="purchase-patterns-report.html",
                                   mime="text/html", key="save_report", on_click="ignore")
    if st.sidebar.button("Download report", key="download_report",
                         help="Builds the stakeholder report for the current filters."):
        with st.sidebar, st.spinner("Building the report..."):
            try:
                path = build(filters)
            except PurchasePatternsError as exc:
                st.error(str(exc))
                return
        st.session_state["_pp_report"] = (filters, path.read_bytes())
        st.rerun()


# -- page furniture -----------------------------------------------------------------------------


def scope_caption(filters: Filters, applies: bool = True, what: str = "") -> None:
    """Say whether (and which) filters shape what follows."""
    if not applies:
        st.caption(f"Not filtered: {what or 'computed over all the data'}.")
    elif filters.is_empty:
        st.caption("All data (no filters).")
    else:
        st.caption("Filtered by " + "; ".join(filters.describe()) + ".")


def explain(message: str) -> None:
    """Why a section is empty (missing table, data without dates, ...)."""
    st.info(message, icon=":material/info:")


def unsupported(catalog: data.Catalog, analysis: str, fallback: str) -> bool:
    """Show why ``analysis`` does not apply to this data; True when it does not."""
    decision = catalog.decision(analysis)
    if decision is None or decision.supported:
        return False
    explain(f"{fallback}: {decision.reason}.")
    return True


def table(df: pd.DataFrame, name: str, *, total: int | None = None,
          column_config: dict[str, Any] | None = None) -> None:
    """A table (its first ``data.SHOW_LIMIT`` rows) with a CSV download of every row of
    ``df``, formula injection neutralised. ``total`` is the full count in the warehouse when
    ``df`` was itself cut at ``data.EXPORT_LIMIT``."""
    shown = df.head(data.SHOW_LIMIT)
    st.dataframe(shown, hide_index=True, column_config=column_config)
    if len(shown) < len(df):
        st.caption(f"Showing {len(shown):,} of {len(df):,} rows; the CSV has all {len(df):,}.")
    label = "Download CSV"
    if total is not None and total > len(df):
        label += f" (first {len(df):,} of {total:,} rows)"
    st.download_button(label, data=lambda: to_csv_bytes(df), file_name=f"{name}.csv",
                       mime="text/csv", key=f"csv_{name}", icon=":material/download:",
                       on_click="ignore")


def chart(fig: Any, key: str) -> None:
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10})
    st.plotly_chart(fig, config=PLOTLY_CONFIG, key=key)


def money(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"${value:,.0f}"


def money2(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"${value:,.2f}"


def count(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{int(value):,}"


def pct(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.1%}"


def when(value: Any) -> str:
    """A date, or a timestamp to the minute."""
    if value is None or pd.isna(value):
        return "–"
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")

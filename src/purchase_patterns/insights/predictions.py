"""Reading what the predict stage wrote (``analytics.customer_predictions``, ``model_cards``,
``model_metrics``), when it has run. Every function returns None or an empty frame when the
tables are not there, so insights and the report say so instead of failing."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from ..datastore import DataStore
from .context import Context

#: churn probability from which a customer counts as likely to churn
HIGH_CHURN = 0.5


def available(store: DataStore) -> bool:
    return store.has_table("analytics", "customer_predictions")


def overview(ctx: Context) -> dict[str, Any] | None:
    """Customers with a prediction in scope, their CLV, and those likely to churn."""
    if not available(ctx.store):
        return None
    preds = ctx.store.relation("analytics", "customer_predictions")
    params: dict[str, Any] = {"high": HIGH_CHURN}
    scope = ""
    if ctx.filters:
        lines, lp = ctx.lines()
        scope = f" where cp.customer_id in (select f.customer_id from {lines})"  # noqa: S608
        params.update(lp)
    row = ctx.query(
        "select count(*) as customers, sum(cp.clv) as total_clv, avg(cp.clv) as avg_clv, "  # noqa: S608
        "min(cp.clv_method) as clv_method, max(cp.horizon_months) as horizon_months, "
        "count(cp.churn_probability) as n_churn_scored, "
        "sum(case when cp.churn_probability >= @high then 1 else 0 end) as n_high_churn, "
        "sum(case when cp.churn_probability >= @high then cp.clv else 0 end) as clv_high_churn, "
        "avg(cp.p_alive) as avg_p_alive "
        f"from {preds} as cp{scope}", params).iloc[0]
    if not int(row["customers"]):
        return None
    out = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    out = {k: (None if v is None or v != v else v) for k, v in out.items()}
    out["high_churn_threshold"] = HIGH_CHURN
    return out


def model_cards(store: DataStore) -> list[dict[str, Any]]:
    """One dict per model card (``card`` holds the parsed ``card_json``)."""
    if not store.has_table("analytics", "model_cards"):
        return []
    rows = store.query(
        f"select * from {store.relation('analytics', 'model_cards')} order by 1").to_dict("records")  # noqa: S608
    for r in rows:
        try:
            r["card"] = json.loads(r.get("card_json") or "{}")
        except (TypeError, ValueError):
            r["card"] = {}
    return rows


def model_metrics(store: DataStore) -> pd.DataFrame:
    if not store.has_table("analytics", "model_metrics"):
        return pd.DataFrame()
    return store.query(
        f"select * from {store.relation('analytics', 'model_metrics')} order by 1, 2")  # noqa: S608

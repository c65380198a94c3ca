"""The ``analytics`` tables the analyze stage owns: their columns and types, in order.

Every table is written on every run, empty when its analysis was skipped, so that readers
(report, dashboard, BI tools) always find the same columns. The contract columns of
``docs/architecture.md`` come first; the rest are additions. ``run_id`` is added at write time.
"""

from __future__ import annotations

import pandas as pd

_S, _F, _I, _B, _D = "string", "float64", "Int64", "boolean", "datetime64[ns]"

SCHEMAS: dict[str, dict[str, str]] = {
    "analyses": {"analysis": _S, "stage": _S, "status": _S, "reason": _S},
    "customer_segments": {
        "customer_id": _S, "scheme": _S, "segment": _S, "r_score": _I, "f_score": _I,
        "m_score": _I, "cluster_id": _I, "cluster_label": _S,
        # the values the scores came from (recency NULL for snapshot data)
        "recency_days": _F, "frequency": _F, "monetary": _F,
    },
    "segment_summary": {
        "scheme": _S, "segment": _S, "customers": _I, "revenue": _F, "revenue_share": _F,
        "avg_clv": _F, "description": _S,
        "customer_share": _F, "purchases": _I, "avg_recency_days": _F, "avg_frequency": _F,
        "avg_monetary": _F, "total_clv": _F, "revenue_last_12_months": _F, "rule": _S,
        "segment_order": _I,
    },
    "clusters": {
        "cluster_id": _I, "cluster_label": _S, "description": _S, "customers": _I, "share": _F,
        "revenue": _F, "revenue_share": _F, "revenue_last_12_months": _F, "avg_clv": _F,
        "silhouette": _F, "k_criterion": _S,
        "profile_json": _S,
    },
    "eda_columns": {
        "column_name": _S, "kind": _S, "n": _I, "n_missing": _I, "n_distinct": _I,
        "mean": _F, "std": _F, "min": _F, "p25": _F, "median": _F, "p75": _F, "max": _F,
        "n_outliers": _I, "top_values": _S,
        "grain": _S, "label": _S, "outlier_rule": _S,
    },
    "eda_distributions": {
        "column_name": _S, "grain": _S, "bin_order": _I, "label": _S, "bin_lower": _F,
        "bin_upper": _F, "n": _I,
    },
    "eda_tests": {
        "question": _S, "test": _S, "statistic": _F, "p_value": _F, "p_adjusted": _F,
        "effect_size": _F, "effect_measure": _S, "significant": _B,
        "variable": _S, "group_by": _S, "n": _I, "effect_magnitude": _S, "groups_json": _S,
        "finding": _S, "sample": _S,
    },
    "eda_associations": {"kind": _S, "column_a": _S, "column_b": _S, "value": _F, "n": _I},
    "trend_periods": {
        "grain": _S, "period": _S, "period_start": _D, "revenue": _F, "purchases": _I,
        "is_peak": _B, "peak_method": _S,
        "period_order": _I, "customers": _I, "trend": _F, "index": _F,
        "growth_vs_previous": _F, "growth_vs_year_ago": _F,
    },
    "preferences": {
        "dimension": _S, "value": _S, "category_name": _S, "revenue": _F, "purchases": _I,
        "share_within_value": _F, "index_vs_overall": _F, "item_name": _S,
    },
    "affinity": {
        "kind": _S, "antecedent": _S, "consequent": _S, "support": _F, "confidence": _F,
        "lift": _F, "n": _I, "p_value": _F, "revenue": _F,
    },
    "recommendations": {
        "rank": _I, "title": _S, "action": _S, "rationale": _S, "segment": _S,
        "customers": _I, "revenue_at_stake": _F, "clv_at_stake": _F, "evidence_json": _S,
        "value_at_stake": _F, "value_basis": _S, "source": _S,
    },
}

#: Tables in the order they are written.
TABLES: tuple[str, ...] = tuple(SCHEMAS)


def conform(table: str, frame: pd.DataFrame | None) -> pd.DataFrame:
    """``frame`` with exactly the columns of ``table`` in order and their types (missing
    columns are NULL; an absent frame is an empty table)."""
    schema = SCHEMAS[table]
    frame = pd.DataFrame() if frame is None else frame
    out = pd.DataFrame(index=frame.index)
    for col, dtype in schema.items():
        values = frame[col] if col in frame.columns else pd.Series(pd.NA, index=frame.index)
        if dtype == _D:
            out[col] = pd.to_datetime(values)
        elif dtype == _I:
            out[col] = pd.to_numeric(values).round().astype(_I)
        elif dtype == _F:
            out[col] = pd.to_numeric(values).astype(_F)
        else:
            out[col] = values.astype(dtype)
    return out.reset_index(drop=True)

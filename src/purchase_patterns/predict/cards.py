"""Model cards: what each model was fitted on, how it was split and judged, against which
baselines, and its caveats. One JSON document per model, stored in ``analytics.model_cards``
and in ``reports/<run id>/model_cards/``; the headline numbers also go, one row per metric and
baseline, to ``analytics.model_metrics``.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__

#: Order and titles of the models of the predict stage (capability names).
TITLES = {
    "clv_bgnbd_gamma_gamma": "Customer lifetime value: BG/NBD purchases x Gamma-Gamma spend",
    "churn_classifier": "Next-period purchase (churn) classifier",
    "clv_heuristic": "Heuristic CLV for snapshot data (stated cadence x spend x horizon)",
    "subscription_propensity": "Subscription propensity, with leakage check",
}


def jsonable(value: Any) -> Any:
    """Plain JSON types: NaN and infinities become None, numpy scalars Python numbers,
    dates ISO strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (datetime, date, pd.Timestamp)):
        return value.isoformat()
    return value


def model_version(model: str, fitted: Any) -> str:
    """``<model>@<package version>+<digest>``: the digest identifies the fitted parameters
    (or settings, for the heuristic), so two runs with the same version predict the same."""
    blob = json.dumps(jsonable(fitted), sort_keys=True).encode()
    return f"{model}@{__version__}+{hashlib.sha256(blob).hexdigest()[:10]}"


def card(model: str, *, status: str, run_id: str, created_at: datetime, reason: str = "",
         version: str | None = None, **sections: Any) -> dict[str, Any]:
    """A model card: identity first, then the sections in the order given."""
    return jsonable({"model": model, "title": TITLES[model], "status": status,
                     "reason": reason, "model_version": version, "run_id": run_id,
                     "created_at": created_at, **sections})


def metric_row(model: str, metric: str, value: float, baseline: str | None = None,
               baseline_value: float | None = None) -> dict[str, Any]:
    return {"model": model, "metric": metric, "value": jsonable(value),
            "baseline": baseline, "baseline_value": jsonable(baseline_value)}


def write_report(cards: list[dict[str, Any]], folder: Path) -> Path:
    """Write every card as ``model_cards/<model>.json`` and a short Markdown overview
    ``model_cards.md`` under ``folder``; returns the Markdown file."""
    target = folder / "model_cards"
    target.mkdir(parents=True, exist_ok=True)
    for c in cards:
        (target / f"{c['model']}.json").write_text(
            json.dumps(c, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    lines = ["# Model cards", ""]
    for c in cards:
        lines.append(f"## {c['title']}")
        lines.append("")
        lines.append(f"- model: `{c['model']}` ({c['status']})")
        if c.get("reason"):
            lines.append(f"- why: {c['reason']}")
        if c.get("model_version"):
            lines.append(f"- version: `{c['model_version']}`")
        for line in c.get("summary", []):
            lines.append(f"- {line}")
        for caveat in c.get("caveats", []):
            lines.append(f"- caveat: {caveat}")
        lines.append(f"- full card: `model_cards/{c['model']}.json`")
        lines.append("")
    overview = folder / "model_cards.md"
    overview.write_text("\n".join(lines), encoding="utf-8")
    return overview


def cards_table(cards: list[dict[str, Any]], run_id: str, created_at: datetime) -> pd.DataFrame:
    return pd.DataFrame({
        "model": pd.Series([c["model"] for c in cards], dtype=object),
        "title": pd.Series([c["title"] for c in cards], dtype=object),
        "status": pd.Series([c["status"] for c in cards], dtype=object),
        "reason": pd.Series([c["reason"] for c in cards], dtype=object),
        "model_version": pd.Series([c.get("model_version") for c in cards], dtype=object),
        "card_json": pd.Series([json.dumps(c, allow_nan=False) for c in cards], dtype=object),
        "run_id": pd.Series([run_id] * len(cards), dtype=object),
        "created_at": pd.Series([pd.Timestamp(created_at).tz_localize(None)] * len(cards),
                                dtype="datetime64[us]"),
    })


def metrics_table(rows: list[dict[str, Any]], run_id: str) -> pd.DataFrame:
    return pd.DataFrame({
        "model": pd.Series([r["model"] for r in rows], dtype=object),
        "metric": pd.Series([r["metric"] for r in rows], dtype=object),
        "value": pd.Series([r["value"] for r in rows], dtype=np.float64),
        "baseline": pd.Series([r["baseline"] for r in rows], dtype=object),
        "baseline_value": pd.Series([r["baseline_value"] for r in rows], dtype=np.float64),
        "run_id": pd.Series([run_id] * len(rows), dtype=object),
    })

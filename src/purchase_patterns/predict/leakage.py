"""Leakage check: flag any feature that on its own predicts the target almost perfectly.

A feature that is a consequence of the target (discounts that come *with* a subscription,
purchases counted after the churn cutoff) makes a model look excellent and be useless. Two
symptoms are looked for, one feature at a time:

* **ranking**: the feature alone ranks the target with ROC-AUC >= ``auc_threshold`` (0.95);
  categorical features are target-encoded out of fold, so a many-valued column cannot score
  by memorising its own rows;
* **rule without exceptions**: one value of the feature (or one side of a decile cut of a
  numeric feature) covers at least ``min_coverage`` (20%) of the customers and at least
  ``purity`` (99.5%) of them share one class, although that class is at most 90% of all
  customers and the purity is far beyond chance (binomial tail < 1e-6). On the Kaggle file
  "no discount used" is such a rule: every one of those customers is a non-subscriber.

Either symptom flags the feature; models are then reported with and without it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

AUC_THRESHOLD = 0.95
PURITY = 0.995
MIN_COVERAGE = 0.20
MAX_BASE_RATE = 0.90
P_VALUE = 1e-6


@dataclass(frozen=True)
class LeakageFinding:
    feature: str
    #: ROC-AUC of the feature alone, oriented so that 0.5 is no signal and 1 perfect
    auc_alone: float
    flagged: bool
    reason: str
    #: the exception-free rule found, if any, e.g. "discount_share <= 0 -> 0"
    rule: str | None = None
    rule_coverage: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _auc_alone(s: pd.Series, y: np.ndarray, seed: int) -> float:
    if _is_numeric(s):
        v = s.astype(np.float64).to_numpy()
        lowest = np.nanmin(v) - 1.0 if np.isfinite(v).any() else 0.0
        score = np.where(np.isnan(v), lowest, v)  # missing as its own (lowest) value
    else:
        codes = s.astype("string").fillna("<missing>").to_numpy()
        score = np.empty(y.size)
        prior = y.mean()
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        for fit_idx, score_idx in folds.split(codes, y):
            rates = (pd.DataFrame({"c": codes[fit_idx], "y": y[fit_idx]})
                     .groupby("c")["y"].agg(["sum", "count"]))
            smoothed = (rates["sum"] + prior) / (rates["count"] + 1.0)
            score[score_idx] = (pd.Series(codes[score_idx]).map(smoothed)
                                .fillna(prior).to_numpy())
    if np.unique(score).size < 2:
        return 0.5
    auc = float(roc_auc_score(y, score))
    return max(auc, 1.0 - auc)


def _groups(s: pd.Series) -> list[tuple[str, np.ndarray]]:
    """Candidate groups: each value of a categorical feature, both sides of each decile cut of
    a numeric one (missing values in neither side)."""
    name = str(s.name)
    if _is_numeric(s):
        v = s.astype(np.float64).to_numpy()
        cuts = np.unique(np.nanquantile(v, np.linspace(0.1, 0.9, 9))) if np.isfinite(
            v).any() else []
        out = []
        for c in cuts:
            out.append((f"{name} <= {c:.6g}", v <= c))
            out.append((f"{name} > {c:.6g}", v > c))
        return out
    codes = s.astype("string").fillna("<missing>")
    return [(f"{name} = {value}", (codes == value).to_numpy()) for value in codes.unique()]


def _exception_free_rule(s: pd.Series, y: np.ndarray, purity: float,
                         min_coverage: float) -> tuple[str, float] | None:
    n = y.size
    best: tuple[str, float] | None = None
    for label, mask in _groups(s):
        size = int(mask.sum())
        if size < min_coverage * n:
            continue
        for cls in (0, 1):
            base = float(np.mean(y == cls))
            hits = int(np.sum(y[mask] == cls))
            if (base <= MAX_BASE_RATE and hits >= purity * size
                    and stats.binom.sf(hits - 1, size, base) < P_VALUE
                    and (best is None or size / n > best[1])):
                best = (f"{label} -> target {cls} for {hits:,} of {size:,} customers "
                        f"({hits / size:.1%}; {base:.1%} overall)", size / n)
    return best


def check_leakage(features: pd.DataFrame, y: np.ndarray, *, auc_threshold: float = AUC_THRESHOLD,
                  purity: float = PURITY, min_coverage: float = MIN_COVERAGE,
                  seed: int = 0) -> list[LeakageFinding]:
    """One :class:`LeakageFinding` per column of ``features`` against the binary target."""
    y = np.asarray(y, dtype=np.int64)
    if y.size == 0 or y.min() == y.max():
        raise ValueError("the leakage check needs both classes in the target")
    findings = []
    for col in features.columns:
        s = features[col]
        auc = _auc_alone(s, y, seed)
        rule = _exception_free_rule(s, y, purity, min_coverage)
        reasons = []
        if auc >= auc_threshold:
            reasons.append(f"alone it ranks the target with ROC-AUC {auc:.3f} "
                           f"(>= {auc_threshold})")
        if rule:
            reasons.append(f"it decides the target without exception for "
                           f"{rule[1]:.0%} of customers: {rule[0]}")
        findings.append(LeakageFinding(
            feature=str(col), auc_alone=auc, flagged=bool(reasons),
            reason="; ".join(reasons) if reasons else f"ROC-AUC alone {auc:.3f}; no "
            "exception-free rule", rule=rule[0] if rule else None,
            rule_coverage=rule[1] if rule else None))
    return findings


def flagged(findings: list[LeakageFinding]) -> list[str]:
    return [f.feature for f in findings if f.flagged]

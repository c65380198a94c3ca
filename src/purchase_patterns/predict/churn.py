"""Next-period purchase (churn) classifier.

Features are computed from purchases on or before the calibration cutoff only; the label is
whether the customer buys at least once in the holdout window after it. Customer attributes
from ``marts.customer_features`` (subscription, stated frequency, demographics) are *not*
used: they are the latest known values and may have been recorded after the cutoff. The
leakage check (:mod:`.leakage`) runs on the features anyway and drops any it flags.

The positive class is "buys again in the window" (the minority on most logs); the churn
probability is its complement. Model: gradient-boosted trees (scikit-learn
``HistGradientBoostingClassifier``: missing values and non-linear recency/frequency
interactions without preprocessing). It is judged on a stratified 30% of customers it was not
trained on, against a recency-only logistic regression (the classic strong baseline) and any
reference forecasts passed in (the BG/NBD probability of a purchase in the same window).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from . import metrics
from .leakage import LeakageFinding, check_leakage, flagged

TEST_SHARE = 0.3
#: Permutation importance (5 re-scorings per feature) uses at most this many test customers.
MAX_IMPORTANCE_ROWS = 10_000


def features(frame: pd.DataFrame, cutoff: date) -> pd.DataFrame:
    """Behavioural features as of ``cutoff`` from a :func:`.data.period_summary` frame (whose
    columns count only purchases on or before the cutoff), as float32: the trees bin them
    into at most 255 values anyway, and at 20M customers each float64 feature frame is
    1.8 GB."""
    end = pd.Timestamp(cutoff)
    tenure = (end - frame["first_date"]).dt.days.astype(np.float64)
    occasions = frame["n_occasions"].astype(np.float64)
    cols = {
        "recency_days": (end - frame["last_date"]).dt.days.astype(np.float64),
        "tenure_days": tenure,
        "repeat_occasions": occasions - 1.0,
        "active_span_days": (frame["last_date"] - frame["first_date"]).dt.days.astype(
            np.float64),
        "occasions_per_year": occasions / np.maximum(tenure, 1.0) * 365.25,
        "mean_spend": frame["spend"] / occasions,
        "total_spend": frame["spend"].astype(np.float64),
        "lines_per_occasion": frame["n_lines"] / occasions,
        "occasions_last_90d": frame["n_recent_90"].astype(np.float64),
        "occasions_last_180d": frame["n_recent_180"].astype(np.float64),
        "discount_share": np.where(frame["n_discount_known"] > 0,
                                   frame["n_discount_lines"]
                                   / frame["n_discount_known"].where(
                                       frame["n_discount_known"] > 0, 1),
                                   np.nan),
    }
    return pd.DataFrame({name: np.asarray(v, dtype=np.float32) for name, v in cols.items()},
                        index=frame.index, copy=False)


def label(frame: pd.DataFrame) -> np.ndarray:
    """1 when the customer buys at least once in the holdout window."""
    return (frame["n_holdout"].to_numpy() > 0).astype(np.int64)


def _model(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        learning_rate=0.1, max_iter=100, max_depth=3, min_samples_leaf=50,
        l2_regularization=1.0, early_stopping=False, random_state=seed)


def _recency_baseline() -> LogisticRegression:
    return LogisticRegression(max_iter=1000)


def _recency(x: pd.DataFrame) -> np.ndarray:
    return np.log1p(x[["recency_days"]].to_numpy())


@dataclass
class ChurnOutcome:
    """Everything the model card, the metrics table and the predictions need."""

    used_features: list[str]
    leakage: list[LeakageFinding]
    n_train: int
    n_test: int
    positive_rate: float
    model_metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    reference_metrics: dict[str, dict[str, float]]
    auc_vs_baseline: dict[str, Any]
    beats_baseline: bool
    verdict: str
    calibration: list[dict]
    baseline_calibration: list[dict]
    permutation_importance: list[dict]
    #: calibration customers, and how many of them the model was trained and judged on when
    #: that is a sample (None: all of them)
    n_customers: int = 0
    n_sampled: int | None = None
    #: P(no purchase in the next window) for the customers scored in production
    churn_probability: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))


def train_and_evaluate(cal_features: pd.DataFrame, y: np.ndarray, score_features: pd.DataFrame,
                       *, references: dict[str, np.ndarray] | None = None,
                       seed: int = 0, max_customers: int | None = None) -> ChurnOutcome:
    """Leakage check, train/test evaluation against the baselines, then a refit on every
    calibration customer to score ``score_features`` (features as of the end of the data).
    Constant and empty columns (e.g. discount share on a log without discount flags) are
    dropped first.

    ``references`` maps a name to another forecast of P(buys in the window) for the same rows
    as ``cal_features`` (compared on the same test customers).

    With more than ``max_customers`` rows, everything up to and including the production fit
    uses a stratified random sample of that many (:func:`.metrics.stratified_sample`); every
    row of ``score_features`` is still scored."""
    y = np.asarray(y, dtype=np.int64)
    n_customers, positive_rate = int(y.size), float(y.mean())
    sample = metrics.stratified_sample(y, max_customers, seed=seed) if max_customers else None
    if sample is not None:
        cal_features, y = cal_features.iloc[sample], y[sample]
        references = {name: np.asarray(p)[sample] for name, p in (references or {}).items()}
    cal_features = cal_features[[c for c in cal_features.columns
                                 if cal_features[c].nunique(dropna=True) > 1]]
    findings = check_leakage(cal_features, y, seed=seed)
    leaky = set(flagged(findings))
    used = [c for c in cal_features.columns if c not in leaky]
    X = cal_features[used]
    idx_train, idx_test = train_test_split(np.arange(y.size), test_size=TEST_SHARE,
                                           stratify=y, random_state=seed)
    model = _model(seed).fit(X.iloc[idx_train], y[idx_train])
    p_test = model.predict_proba(X.iloc[idx_test])[:, 1]
    base = _recency_baseline().fit(_recency(cal_features.iloc[idx_train]), y[idx_train])
    p_base = base.predict_proba(_recency(cal_features.iloc[idx_test]))[:, 1]
    y_test = y[idx_test]

    diff = metrics.bootstrap_auc_difference(y_test, p_test, p_base, seed=seed)
    beats = diff["ci95_low"] > 0
    m_model = metrics.classification(y_test, p_test)
    m_base = metrics.classification(y_test, p_base)
    if beats:
        verdict = (f"beats the recency-only baseline: ROC-AUC {m_model['roc_auc']:.3f} vs "
                   f"{m_base['roc_auc']:.3f} (difference {diff['difference']:+.3f}, 95% CI "
                   f"{diff['ci95_low']:+.3f} to {diff['ci95_high']:+.3f})")
    else:
        verdict = (f"does NOT beat the recency-only baseline: ROC-AUC {m_model['roc_auc']:.3f} "
                   f"vs {m_base['roc_auc']:.3f} (difference {diff['difference']:+.3f}, 95% CI "
                   f"{diff['ci95_low']:+.3f} to {diff['ci95_high']:+.3f}); recency alone "
                   "ranks customers as well")
    rng = np.random.default_rng(seed)
    sub = (np.sort(rng.choice(idx_test.size, MAX_IMPORTANCE_ROWS, replace=False))
           if idx_test.size > MAX_IMPORTANCE_ROWS else np.arange(idx_test.size))
    perm = permutation_importance(model, X.iloc[idx_test[sub]], y_test[sub], scoring="roc_auc",
                                  n_repeats=5, random_state=seed)
    importance = sorted(
        ({"feature": f, "auc_drop_mean": float(mu), "auc_drop_std": float(sd)}
         for f, mu, sd in zip(used, perm.importances_mean, perm.importances_std, strict=True)),
        key=lambda d: -d["auc_drop_mean"])
    refs = {name: metrics.classification(y_test, np.asarray(p)[idx_test])
            for name, p in (references or {}).items()}

    final = _model(seed).fit(X, y)
    churn = 1.0 - metrics.predict_positive(final, score_features[used])
    return ChurnOutcome(
        used_features=used, leakage=findings, n_train=int(idx_train.size),
        n_test=int(idx_test.size), positive_rate=positive_rate, n_customers=n_customers,
        n_sampled=None if sample is None else int(sample.size), model_metrics=m_model,
        baseline_metrics=m_base, reference_metrics=refs, auc_vs_baseline=diff,
        beats_baseline=bool(beats), verdict=verdict,
        calibration=metrics.calibration_curve(y_test, p_test),
        baseline_calibration=metrics.calibration_curve(y_test, p_base),
        permutation_importance=importance, churn_probability=churn)

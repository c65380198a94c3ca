"""Propensity model for a binary customer attribute (subscription), with a leakage check.

On a snapshot file nothing happens *after* anything, so a propensity model can only learn
which customers look like subscribers. Columns that are consequences of the target (on the
Kaggle file every subscriber used a discount and a promo code) make such a model look perfect
and say nothing; :mod:`.leakage` flags them, and the model is reported with all features and
without the flagged ones.

Model: L2-regularised logistic regression on standardised numeric and one-hot categorical
features: few thousand rows, mostly categorical columns, and probabilities that are
calibrated by construction. Accuracy is measured out of fold (5-fold stratified
cross-validation); the scores written per customer come from a refit on all customers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from . import metrics
from .leakage import LeakageFinding, check_leakage, flagged

FOLDS = 5
#: One-hot categories rarer than this are pooled ("infrequent").
MIN_CATEGORY_COUNT = 20


@dataclass
class PropensityResult:
    """Out-of-fold accuracy of one feature set and the production scores it gives."""

    features: list[str]
    metrics: dict[str, float]
    calibration: list[dict]
    scores: np.ndarray = field(repr=False)


@dataclass
class PropensityOutcome:
    target: str
    n_customers: int
    positive_rate: float
    leakage: list[LeakageFinding]
    with_all: PropensityResult
    without_leaky: PropensityResult
    baseline: dict[str, float]


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float, everything else as text with missing as its own value."""
    out = pd.DataFrame(index=frame.index)
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            out[col] = s.astype(np.float64)
        else:
            out[col] = s.astype("string").fillna("<missing>").astype(object)
    return out


def _model(frame: pd.DataFrame, seed: int) -> Pipeline:
    numeric = [c for c in frame.columns if frame[c].dtype == np.float64]
    categorical = [c for c in frame.columns if c not in numeric]
    columns = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("categorical", OneHotEncoder(handle_unknown="infrequent_if_exist",
                                      min_frequency=MIN_CATEGORY_COUNT), categorical),
    ])
    return make_pipeline(columns, LogisticRegression(max_iter=2000, random_state=seed))


def _evaluate(X: pd.DataFrame, y: np.ndarray, cols: list[str], seed: int) -> PropensityResult:
    if not cols:  # nothing left: the prior is all there is
        prior = np.full(y.size, y.mean())
        return PropensityResult([], metrics.classification(y, prior),
                                metrics.calibration_curve(y, prior), prior)
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    oof = cross_val_predict(_model(X[cols], seed), X[cols], y, cv=folds,
                            method="predict_proba")[:, 1]
    scores = _model(X[cols], seed).fit(X[cols], y).predict_proba(X[cols])[:, 1]
    return PropensityResult(cols, metrics.classification(y, oof),
                            metrics.calibration_curve(y, oof), scores)


def train_and_evaluate(features: pd.DataFrame, y: np.ndarray, *, target: str,
                       seed: int = 0) -> PropensityOutcome:
    """Leakage check, then out-of-fold accuracy and production scores with all features and
    without the flagged ones. Constant and empty columns are dropped first."""
    y = np.asarray(y, dtype=np.int64)
    X = _prepare(features)
    X = X[[c for c in X.columns if X[c].nunique(dropna=True) > 1]]
    findings = check_leakage(X, y, seed=seed)
    leaky = set(flagged(findings))
    all_cols = list(X.columns)
    with_all = _evaluate(X, y, all_cols, seed)
    clean = [c for c in all_cols if c not in leaky]
    without = with_all if not leaky else _evaluate(X, y, clean, seed)
    prior = np.full(y.size, y.mean())
    return PropensityOutcome(
        target=target, n_customers=int(y.size), positive_rate=float(y.mean()),
        leakage=findings, with_all=with_all, without_leaky=without,
        baseline=metrics.classification(y, prior))

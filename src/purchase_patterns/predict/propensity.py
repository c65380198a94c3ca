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
    #: customers the models were fitted and judged on when that is a sample (None: all)
    n_sampled: int | None = None


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


def _varies(s: pd.Series) -> bool:
    """More than one value once :func:`_prepare` has run (where missing text is a value)."""
    numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    return s.nunique(dropna=numeric) > 1


def _evaluate(X: pd.DataFrame, y: np.ndarray, fit_on: tuple[pd.DataFrame, np.ndarray],
              cols: list[str], seed: int) -> PropensityResult:
    """Out-of-fold accuracy on the rows ``fit_on`` (prepared; all of ``X``, ``y`` or a sample
    of them) and production scores for every row of ``X`` (as given: each scoring chunk is
    prepared on its own, so the whole of ``X`` is never copied as text objects) from a refit
    on those rows."""
    if not cols:  # nothing left: the prior is all there is
        prior = np.full(y.size, y.mean())
        return PropensityResult([], metrics.classification(y, prior),
                                metrics.calibration_curve(y, prior), prior)
    Xs, ys = fit_on
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    oof = cross_val_predict(_model(Xs[cols], seed), Xs[cols], ys, cv=folds,
                            method="predict_proba")[:, 1]
    scores = metrics.predict_positive(_model(Xs[cols], seed).fit(Xs[cols], ys), X,
                                      prepare=lambda part: _prepare(part[cols]))
    return PropensityResult(cols, metrics.classification(ys, oof),
                            metrics.calibration_curve(ys, oof), scores)


def train_and_evaluate(features: pd.DataFrame, y: np.ndarray, *, target: str,
                       seed: int = 0, max_customers: int | None = None,
                       columns: list[str] | None = None) -> PropensityOutcome:
    """Leakage check, then out-of-fold accuracy and production scores with all features and
    without the flagged ones. ``columns`` are the candidate features of ``features``
    (default: every column); constant and empty ones are dropped first. With more than
    ``max_customers`` rows the leakage check, cross-validation and fits use a stratified
    random sample of that many (:func:`.metrics.stratified_sample`); every row is scored."""
    y = np.asarray(y, dtype=np.int64)
    all_cols = [c for c in (columns or list(features.columns)) if _varies(features[c])]
    sample = metrics.stratified_sample(y, max_customers, seed=seed) if max_customers else None
    fit_on = ((_prepare(features[all_cols]), y) if sample is None
              else (_prepare(features[all_cols].iloc[sample]), y[sample]))
    findings = check_leakage(*fit_on, seed=seed)
    leaky = set(flagged(findings))
    with_all = _evaluate(features, y, fit_on, all_cols, seed)
    clean = [c for c in all_cols if c not in leaky]
    without = with_all if not leaky else _evaluate(features, y, fit_on, clean, seed)
    prior = np.full(y.size, y.mean())
    return PropensityOutcome(
        target=target, n_customers=int(y.size), positive_rate=float(y.mean()),
        leakage=findings, with_all=with_all, without_leaky=without,
        baseline=metrics.classification(y, prior),
        n_sampled=None if sample is None else int(sample.size))

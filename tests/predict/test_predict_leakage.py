"""Leakage: a feature built from the label is flagged and kept out of the churn model; churn
features never see purchases after the cutoff; on the Kaggle file discount and promo usage are
flagged and the subscription model is reported with and without them."""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from purchase_patterns.datastore import store
from purchase_patterns.predict import churn, data, metrics, propensity
from purchase_patterns.predict.leakage import check_leakage, flagged
from purchase_patterns.settings import load_settings

CUTOFF = date(1997, 9, 30)
LAST = date(1998, 6, 30)


@pytest.fixture(scope="module")
def cdnow_split(built_home) -> pd.DataFrame:
    with store(load_settings(home=built_home("cdnow_sample")), read_only=True) as s:
        return data.period_summary(s, CUTOFF, LAST)


def test_leaky_churn_feature_is_flagged_and_left_out(cdnow_split):
    features = churn.features(cdnow_split, CUTOFF)
    y = churn.label(cdnow_split)
    # a feature computed from the holdout period: the label leaking in
    features["holdout_occasions"] = cdnow_split["n_holdout"].to_numpy()
    # a subtler one: holdout spend bucketed and blurred with noise
    rng = np.random.default_rng(0)
    features["holdout_spend_band"] = (np.round(cdnow_split["holdout_spend"] / 50)
                                      + rng.normal(0, 0.01, len(y)))
    findings = {f.feature: f for f in check_leakage(features, y)}
    assert findings["holdout_occasions"].flagged
    assert findings["holdout_occasions"].auc_alone == pytest.approx(1.0)
    assert findings["holdout_spend_band"].flagged
    # the honest behavioural features are not flagged
    assert set(flagged(list(findings.values()))) == {"holdout_occasions", "holdout_spend_band"}

    out = churn.train_and_evaluate(features, y, churn.features(cdnow_split, LAST).assign(
        holdout_occasions=0, holdout_spend_band=0.0), seed=1)
    assert "holdout_occasions" not in out.used_features
    assert "holdout_spend_band" not in out.used_features
    assert out.model_metrics["roc_auc"] < 0.95  # no perfect score sneaks back in
    assert {f.feature for f in out.leakage if f.flagged} == {"holdout_occasions",
                                                             "holdout_spend_band"}


def test_exception_free_rule_is_flagged_even_with_modest_auc():
    rng = np.random.default_rng(0)
    n = 2000
    y = (rng.random(n) < 0.3).astype(int)
    # every positive has the flag; half of the negatives too: AUC only ~0.75, but "no flag"
    # decides the target for a third of the customers without exception
    flag = np.where(y == 1, 1, (rng.random(n) < 0.5).astype(int))
    noise = rng.normal(size=n)
    findings = {f.feature: f for f in check_leakage(
        pd.DataFrame({"flag": flag.astype(bool), "noise": noise,
                      "group": rng.choice(["a", "b", "c"], n)}), y)}
    assert findings["flag"].flagged and findings["flag"].auc_alone < 0.95
    assert "without exception" in findings["flag"].reason
    assert not findings["noise"].flagged and not findings["group"].flagged


def test_churn_features_never_see_purchases_after_the_cutoff(built_home, tmp_path, cdnow_split):
    """Deleting every purchase after the cutoff changes the labels but not one feature."""
    home = tmp_path / "home"
    shutil.copytree(built_home("cdnow_sample"), home)
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        deleted = con.execute("delete from marts.fct_purchases where purchase_date > ?",
                              [CUTOFF]).fetchone()[0]
    finally:
        con.close()
    assert deleted > 0
    with store(load_settings(home=home), read_only=True) as s:
        truncated = data.period_summary(s, CUTOFF, LAST)
    pd.testing.assert_frame_equal(churn.features(truncated, CUTOFF),
                                  churn.features(cdnow_split, CUTOFF))
    assert truncated["n_holdout"].sum() == 0 < cdnow_split["n_holdout"].sum()


def test_kaggle_discount_and_promo_flagged_and_reported_without(built_home):
    from purchase_patterns.predict.stage import PROPENSITY_FEATURES

    with store(load_settings(home=built_home("kaggle")), read_only=True) as s:
        feats = data.snapshot_features(s)
    y = feats["has_subscription"].astype(bool).to_numpy().astype(int)
    out = propensity.train_and_evaluate(feats[list(PROPENSITY_FEATURES)], y,
                                        target="has_subscription", seed=0)
    leaky = {f.feature: f for f in out.leakage if f.flagged}
    assert {"discount_share", "promo_share"} <= set(leaky)
    # on this file no subscriber is without a discount: "no discount" decides the target
    assert "2,223 of 2,223" in leaky["discount_share"].reason
    assert "discount_share" in out.with_all.features
    assert not set(leaky) & set(out.without_leaky.features)
    assert out.with_all.metrics["roc_auc"] > 0.85
    assert out.without_leaky.metrics["roc_auc"] < 0.6  # the rest of the file carries no signal
    assert out.baseline["roc_auc"] == pytest.approx(0.5)
    assert len(out.with_all.scores) == len(out.without_leaky.scores) == 3900


def test_stratified_sample_keeps_class_shares():
    y = np.r_[np.ones(300, int), np.zeros(9_700, int)]
    assert metrics.stratified_sample(y, 10_000) is None  # small enough: everyone
    idx = metrics.stratified_sample(y, 1_000, seed=3)
    assert idx.size == 1_000 and np.all(np.diff(idx) > 0)  # sorted, no repeats
    assert y[idx].sum() == 30  # 3% positives, as in the whole


def test_models_trained_on_a_sample_still_score_every_customer(built_home, cdnow_split):
    """Above ``max_customers`` the churn and propensity models fit and judge on a stratified
    sample, say so, and still return one score per customer; the leakage check still works."""
    features = churn.features(cdnow_split, CUTOFF)
    y = churn.label(cdnow_split)
    features["holdout_occasions"] = cdnow_split["n_holdout"].to_numpy()
    scored = churn.features(cdnow_split, LAST).assign(holdout_occasions=0)
    out = churn.train_and_evaluate(features, y, scored, seed=1, max_customers=1_200)
    assert out.n_customers == len(y) > 1_200
    assert out.n_sampled == out.n_train + out.n_test == 1_200
    assert out.positive_rate == pytest.approx(y.mean())
    assert len(out.churn_probability) == len(scored)
    assert "holdout_occasions" not in out.used_features
    whole = churn.train_and_evaluate(features, y, scored, seed=1)
    assert whole.n_sampled is None and whole.n_train + whole.n_test == len(y)
    assert out.model_metrics["roc_auc"] == pytest.approx(whole.model_metrics["roc_auc"], abs=0.08)

    from purchase_patterns.predict.stage import PROPENSITY_FEATURES
    with store(load_settings(home=built_home("kaggle")), read_only=True) as s:
        feats = data.snapshot_features(s)
    y = feats["has_subscription"].astype(bool).to_numpy().astype(int)
    out = propensity.train_and_evaluate(feats[list(PROPENSITY_FEATURES)], y,
                                        target="has_subscription", seed=0, max_customers=1_500)
    assert out.n_sampled == 1_500 and out.n_customers == 3_900
    assert {"discount_share", "promo_share"} <= {f.feature for f in out.leakage if f.flagged}
    assert len(out.with_all.scores) == len(out.without_leaky.scores) == 3_900


def test_chunked_scoring_equals_one_call():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=2_500), "b": rng.integers(0, 5, 2_500)})
    y = (X["a"] + rng.normal(scale=0.5, size=2_500) > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    chunked = metrics.predict_positive(model, X, chunk_rows=700)  # 3 full chunks + a short one
    assert chunked.shape == (2_500,)
    np.testing.assert_array_equal(chunked, model.predict_proba(X)[:, 1])

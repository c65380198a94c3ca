"""The model code as pure functions: the published CDNOW estimates reproduced from the real
file, the generator's truth recovered, the closed-form predictions checked against identities
and simulation, and the accuracy measures against their definitions."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy import special
from sklearn.metrics import roc_auc_score

from purchase_patterns.capabilities import profile
from purchase_patterns.datastore import store
from purchase_patterns.generate import generate
from purchase_patterns.predict import bgnbd, btyd, clv, data, gamma_gamma, metrics, reference
from purchase_patterns.predict.bgnbd import BgNbdParams
from purchase_patterns.predict.gamma_gamma import GammaGammaParams
from purchase_patterns.predict.mle import compress
from purchase_patterns.predict.simulate import simulate_summaries
from purchase_patterns.settings import load_settings

CDNOW = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
SPEND = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)


# -- the published CDNOW estimates -------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow_39wk(built_home) -> pd.DataFrame:
    """The CDNOW sample summarised through the warehouse with the classic 39-week split."""
    with store(load_settings(home=built_home("cdnow_sample")), read_only=True) as s:
        raw = data.period_summary(s, reference.CDNOW_CALIBRATION_END, date(1998, 6, 30))
    return data.btyd_summary(raw, reference.CDNOW_CALIBRATION_END)


def test_cdnow_calibration_summary_matches_the_papers(cdnow_39wk):
    # FHL (2005): 2,357 customers, 946 of whom make a repeat purchase in the 39 weeks
    assert len(cdnow_39wk) == 2357
    assert int((cdnow_39wk["x"] > 0).sum()) == 946
    assert cdnow_39wk["T"].max() == pytest.approx(272 / 7)  # first buyers on 1997-01-01
    assert (cdnow_39wk["t_x"] <= cdnow_39wk["T"]).all()


def test_cdnow_bgnbd_reproduces_the_published_estimates(cdnow_39wk):
    fit = bgnbd.fit(cdnow_39wk["x"], cdnow_39wk["t_x"], cdnow_39wk["T"])
    assert fit.converged
    # published to 3 decimals: agree to half a unit in the last digit
    for name, published in reference.BGNBD_PUBLISHED.as_dict().items():
        assert getattr(fit.params, name) == pytest.approx(published, abs=5e-4), name
    assert fit.log_likelihood == pytest.approx(reference.BGNBD_PUBLISHED_LL, abs=0.05)
    # the weighted (compressed) fit is the same as one row per customer
    assert fit.n_distinct < fit.n_customers
    assert bgnbd.log_likelihood(fit.params, cdnow_39wk["x"], cdnow_39wk["t_x"],
                                cdnow_39wk["T"]) == pytest.approx(fit.log_likelihood)


def test_cdnow_gamma_gamma_reproduces_the_published_estimates(cdnow_39wk):
    spend = btyd.fit_spend(cdnow_39wk)
    assert spend.usable and spend.fit.n_customers == 946
    for name, published in reference.GAMMA_GAMMA_PUBLISHED.as_dict().items():
        assert getattr(spend.fit.params, name) == pytest.approx(published, abs=5e-3), name
    rep = cdnow_39wk[cdnow_39wk["x"] > 0]
    assert gamma_gamma.log_likelihood(spend.fit.params, rep["x"], rep["m"]) == pytest.approx(
        spend.fit.log_likelihood)


def test_analytic_gradient_matches_finite_differences(cdnow_39wk):
    rows = bgnbd._Rows.of(*(cdnow_39wk[c].to_numpy() for c in ("x", "t_x", "T")))
    logp = np.log(CDNOW.as_array()) + np.array([0.1, -0.2, 0.3, -0.1])
    _, grad = bgnbd._loglik_terms(logp, rows, with_grad=True)
    for j in range(4):
        step = np.zeros(4)
        step[j] = 1e-6
        hi = bgnbd._loglik_terms(logp + step, rows, with_grad=False)[0].sum()
        lo = bgnbd._loglik_terms(logp - step, rows, with_grad=False)[0].sum()
        assert grad[j].sum() == pytest.approx((hi - lo) / 2e-6, rel=1e-5)
    rep = cdnow_39wk[cdnow_39wk["x"] > 0]
    spend_rows = gamma_gamma._Rows.of(rep["x"].to_numpy(), rep["m"].to_numpy())
    logq = np.log(SPEND.as_array()) + 0.2
    _, grad = gamma_gamma._loglik_terms(logq, spend_rows, True)
    for j in range(3):
        step = np.zeros(3)
        step[j] = 1e-6
        hi = gamma_gamma._loglik_terms(logq + step, spend_rows, False)[0].sum()
        lo = gamma_gamma._loglik_terms(logq - step, spend_rows, False)[0].sum()
        assert grad[j].sum() == pytest.approx((hi - lo) / 2e-6, rel=1e-5)


# -- known truth ---------------------------------------------------------------------------------


def _within(fit, truth: dict[str, float], k: float) -> dict[str, float]:
    """z-scores of the estimates against the truth; asserts |z| <= k for each."""
    z = {name: (getattr(fit.params, name) - v) / fit.std_errors[name] for name, v in truth.items()}
    assert all(abs(v) <= k for v in z.values()), z
    return z


def test_recovers_parameters_of_the_model_itself():
    """Customers drawn straight from BG/NBD + Gamma-Gamma: with a fixed seed every estimate is
    within 3 asymptotic standard errors of the truth (a 99.7% interval per parameter); the
    standard errors themselves come from the observed information and are checked to be
    small relative to the parameters, so the tolerance is tight."""
    df = simulate_summaries(40_000, CDNOW, SPEND, T_min=10, T_max=78, seed=3)
    fit = bgnbd.fit(df["x"], df["t_x"], df["T"])
    _within(fit, CDNOW.as_dict(), 3.0)
    assert max(fit.std_errors[k] / v for k, v in CDNOW.as_dict().items()) < 0.1
    rep = df[df["x"] > 0]
    spend = gamma_gamma.fit(rep["x"], rep["m"])
    _within(spend, SPEND.as_dict(), 3.0)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[pd.DataFrame, dict]:
    """20,000 customers from the purchase-line generator (with seasonality and category
    prices), read back from the CSV with their truth."""
    out = tmp_path_factory.mktemp("gen") / "purchases.csv"
    res = generate(out, 20_000, seed=11)
    truth = json.loads(res.truth_path.read_text())
    names = {"Customer ID": "customer", "Purchase Date": "date",
             "Purchase Amount (USD)": "amount", "Category": "category"}
    lines = pd.read_csv(out, usecols=list(names)).rename(columns=names)
    return lines, truth


def test_recovers_the_generator_truth(generated):
    """The generator's truth describes a de-seasonalised process in weeks with one row per
    purchase. Measured that way (time through the cumulative month multipliers, amounts
    divided by the category price factor, every line a purchase), the fit recovers every
    parameter within 3 standard errors. Two conventions are deliberately undone here: the
    production summary merges purchases on one day into one occasion (~1% of these lines,
    mostly of heavy buyers) and measures calendar time; both are part of fitting real
    logs, not of this generator's truth."""
    lines, truth = generated
    start = pd.Timestamp(truth["start"])
    days = pd.date_range(start, truth["end"], freq="D")
    mult = np.array(list(truth["seasonality"]["month_multipliers"].values()))[days.month - 1]
    cum = np.concatenate([[0.0], np.cumsum(mult)])
    k = (pd.to_datetime(lines["date"]) - start).dt.days.to_numpy()
    lines["t"] = (cum[k] + 0.5 * mult[k]) / 7.0  # operational weeks at mid-day
    lines["value"] = lines["amount"] / lines["category"].map(truth["category_spend_factors"])
    lines = lines.sort_values(["customer", "t"], kind="stable")
    g = lines.groupby("customer")
    first, last, n = g["t"].min(), g["t"].max(), g.size()
    x = (n - 1).to_numpy(dtype=float)
    fit = bgnbd.fit(x, (last - first).to_numpy(), cum[-1] / 7.0 - first.to_numpy())
    _within(fit, truth["params"]["bgnbd"], 3.0)

    repeat = lines[lines.groupby("customer").cumcount() > 0].groupby("customer")["value"]
    spend = gamma_gamma.fit(repeat.size().to_numpy(dtype=float), repeat.mean().to_numpy())
    _within(spend, truth["params"]["gamma_gamma"], 3.0)


# -- closed forms -----------------------------------------------------------------------------


def test_conditional_expectation_agrees_with_the_population_forecast():
    """Averaged over customers observed for T weeks, the conditional forecast for (T, T+t]
    must equal the unconditional E[X(T+t)] - E[X(T)] (law of total expectation); heavy
    buyers and long horizons included (Euler-transformed hypergeometric)."""
    T, t = 30.0, 100.0
    df = simulate_summaries(200_000, CDNOW, SPEND, T_min=T, T_max=T, seed=5)
    cond = bgnbd.expected_purchases(CDNOW, t, df["x"], df["t_x"], df["T"]).mean()
    uncond = bgnbd.expected_purchases_new(CDNOW, T + t) - bgnbd.expected_purchases_new(CDNOW, T)
    assert cond == pytest.approx(uncond, rel=0.02)
    # the simulator agrees with the unconditional formula
    assert df["x"].mean() == pytest.approx(bgnbd.expected_purchases_new(CDNOW, T), rel=0.02)


def test_expected_purchases_match_the_untransformed_formula():
    x = np.array([0.0, 1, 3, 10, 40])
    t_x = np.array([0.0, 5, 20, 30, 35])
    T = np.full(5, 39.0)
    r, alpha, a, b = CDNOW.as_array()
    t = 39.0
    z = t / (alpha + T + t)
    direct = ((a + b + x - 1) / (a - 1)
              * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x)
                 * special.hyp2f1(r + x, b + x, a + b + x - 1, z))
              * bgnbd.p_alive(CDNOW, x, t_x, T))
    np.testing.assert_allclose(bgnbd.expected_purchases(CDNOW, t, x, t_x, T), direct, rtol=1e-9)
    alive = bgnbd.p_alive(CDNOW, x, t_x, T)
    assert alive[0] == 1.0 and np.all((alive > 0) & (alive <= 1))
    p0 = bgnbd.prob_no_purchase(CDNOW, t, x, t_x, T)
    assert np.all((p0 >= 1 - alive) & (p0 <= 1))
    # a heavy buyer seen recently is more likely to buy than one gone quiet
    quiet = bgnbd.p_alive(CDNOW, np.array([10.0]), np.array([5.0]), np.array([39.0]))
    assert quiet[0] < alive[3]


def test_clv_sums_discounted_monthly_purchases():
    x, t_x, T = np.array([2.0, 0.0]), np.array([20.0, 0.0]), np.array([30.0, 30.0])
    spend = np.array([40.0, 25.0])
    purchases, value = clv.model_clv(CDNOW, x, t_x, T, spend, horizon_months=12,
                                     discount_rate_annual=0.0)
    expected = bgnbd.expected_purchases(CDNOW, 12 * clv.WEEKS_PER_MONTH, x, t_x, T)
    np.testing.assert_allclose(purchases, expected)
    np.testing.assert_allclose(value, expected * spend)  # no discounting: purchases x spend
    _, discounted = clv.model_clv(CDNOW, x, t_x, T, spend, horizon_months=12,
                                  discount_rate_annual=0.2)
    assert np.all(discounted < value) and np.all(discounted > value / 1.2)
    p, v = clv.heuristic_clv(np.array([12.0, np.nan]), np.array([50.0, 10.0]),
                             horizon_months=6, discount_rate_annual=0.0)
    assert p[0] == 6.0 and v[0] == 300.0 and np.isnan(v[1])


def test_expected_spend_shrinks_towards_the_population_mean():
    m = gamma_gamma.expected_spend(SPEND, np.array([0.0, 1.0, 50.0]), np.array([0.0, 100.0, 100.0]))
    assert m[0] == pytest.approx(SPEND.population_mean)
    assert SPEND.population_mean < m[1] < m[2] < 100.0
    assert m[2] == pytest.approx(100.0, rel=0.05)


def test_compress_round_trips():
    a = np.array([1.0, 2.0, 1.0, 3.0, 2.0])
    b = np.array([0.5, 0.5, 0.5, 0.5, 0.5])
    (ua, ub), counts, inverse = compress(a, b)
    np.testing.assert_array_equal(ua[inverse], a)
    np.testing.assert_array_equal(ub[inverse], b)
    assert counts.sum() == 5 and len(counts) == 3


def test_btyd_counts_from_the_mart_equal_the_summary_from_the_lines(built_home):
    """The whole period's inputs read from ``customer_features`` (distinct rows + counts) are
    the customers of ``period_summary`` over the purchase lines, row for row, and fit the
    same parameters (on the CDNOW sample, whose customers buy several times on some days)."""
    with store(load_settings(home=built_home("cdnow_sample")), read_only=True) as s:
        last = data.span(s).last
        lines = data.btyd_summary(data.period_summary(s, last), last)
        counts = data.btyd_counts(s, profile(s))
    assert counts is not None
    x, t_x, T, n = counts
    assert n.sum() == len(lines) and (n >= 1).all()
    (ux, ut, uT), un, _ = compress(lines["x"], lines["t_x"], lines["T"])
    ours = sorted(zip(x, np.round(t_x * 7), np.round(T * 7), n, strict=True))
    theirs = sorted(zip(ux, np.round(ut * 7), np.round(uT * 7), un, strict=True))
    assert ours == theirs
    a = bgnbd.fit(x, t_x, T, weights=n).params.as_array()
    b = bgnbd.fit(lines["x"], lines["t_x"], lines["T"]).params.as_array()
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_fit_rejects_impossible_summaries():
    with pytest.raises(ValueError, match="t_x"):
        bgnbd.fit(np.array([1.0]), np.array([5.0]), np.array([3.0]))
    with pytest.raises(ValueError, match="positive"):
        gamma_gamma.fit(np.array([1.0]), np.array([0.0]))


# -- accuracy measures ----------------------------------------------------------------------------


def test_normalised_gini_and_lift_handle_ties():
    actual = np.array([0, 0, 1, 2, 5], dtype=float)
    assert metrics.normalised_gini(actual, actual) == pytest.approx(1.0)
    assert metrics.normalised_gini(actual, np.zeros(5)) == pytest.approx(0.0)
    assert metrics.normalised_gini(actual, -actual) < 0
    y = np.array([1] * 10 + [0] * 90)
    assert metrics.lift_top_decile(y, np.ones(100)) == pytest.approx(1.0)
    assert metrics.lift_top_decile(y, y.astype(float)) == pytest.approx(10.0)
    assert metrics.aggregate_error_pct(np.array([10.0]), np.array([12.0])) == pytest.approx(20.0)
    table = metrics.decile_table(np.arange(100.0), np.arange(100.0))
    assert len(table) == 10 and table[0]["mean_actual"] > table[-1]["mean_actual"]


def test_bootstrap_auc_difference_uses_weighted_auc():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    good = np.round(y + rng.normal(0, 1, 2000), 1)
    noise = rng.normal(0, 1, 2000)
    u, inv = np.unique(good, return_inverse=True)
    w = rng.integers(0, 3, 2000).astype(float)
    assert metrics._weighted_auc(inv, u.size, w * y, w * (1 - y)) == pytest.approx(
        roc_auc_score(y, good, sample_weight=w))
    diff = metrics.bootstrap_auc_difference(y, good, noise, seed=1)
    assert diff["ci95_low"] > 0.2 and diff["ci95_low"] < diff["difference"] < diff["ci95_high"]
    same = metrics.bootstrap_auc_difference(y, good, good, seed=1)
    assert same["difference"] == 0 and same["ci95_low"] == 0 == same["ci95_high"]

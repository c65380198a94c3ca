"""BG/NBD + Gamma-Gamma end to end on customer summaries: fit on the calibration period,
judge the forecasts on the holdout against naive baselines, refit on the whole period and
predict every customer's next purchases, P(alive), spend and CLV.

Pure functions of pandas frames from :func:`.data.btyd_summary` (plus the holdout counts), so
the whole procedure can be tested and benchmarked without a warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import bgnbd, gamma_gamma, metrics
from .bgnbd import BgNbdParams
from .clv import model_clv
from .gamma_gamma import GammaGammaParams
from .mle import Fit

#: Calibration-frequency groups of the classic holdout table (FHL 2005, Figure 4): 0..6, 7+.
FREQUENCY_GROUPS = 7


@dataclass
class SpendFit:
    """The Gamma-Gamma fit, or why there is none."""

    fit: Fit[GammaGammaParams] | None
    n_excluded_nonpositive: int
    frequency_spend_correlation: float
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.fit is not None and self.problem is None


def fit_spend(summary: pd.DataFrame) -> SpendFit:
    """Gamma-Gamma on repeat customers with a positive mean repeat spend. A fit whose ``q``
    is at most 1 has no finite population mean, so it cannot price a customer: it is kept
    for the card but marked unusable."""
    rep = summary[summary["x"] > 0]
    ok = rep["m"] > 0
    x, m = rep.loc[ok, "x"].to_numpy(), rep.loc[ok, "m"].to_numpy()
    corr = gamma_gamma.frequency_spend_correlation(x, m)
    if x.size < 2:
        return SpendFit(None, int((~ok).sum()), corr, "fewer than 2 repeat customers "
                        "with a positive repeat spend")
    fit = gamma_gamma.fit(x, m)
    problem = None
    if fit.params.q <= 1.0:
        problem = (f"q = {fit.params.q:.3f} <= 1: the spend distribution has no finite mean, "
                   "so spend and CLV are not predicted")
    elif not fit.converged:
        problem = f"the fit did not converge ({fit.message}; at bounds: {fit.at_bounds})"
    return SpendFit(fit, int((~ok).sum()), corr, problem)


def predict(bg: BgNbdParams, spend: SpendFit, summary: pd.DataFrame, *, horizon_months: int,
            discount_rate_annual: float) -> pd.DataFrame:
    """Per-customer predictions from fitted parameters: ``expected_purchases`` over the
    horizon, ``p_alive``, ``expected_avg_spend`` and discounted ``clv`` (NaN when the spend
    model is unusable)."""
    x, t_x, T = (summary[c].to_numpy() for c in ("x", "t_x", "T"))
    out = pd.DataFrame({"customer_id": summary["customer_id"].reset_index(drop=True)})
    out["p_alive"] = bgnbd.p_alive(bg, x, t_x, T)
    if spend.usable:
        assert spend.fit is not None
        avg = gamma_gamma.expected_spend(spend.fit.params, x, np.nan_to_num(summary["m"]))
    else:
        avg = np.full(x.size, np.nan)
    purchases, clv = model_clv(bg, x, t_x, T, avg, horizon_months=horizon_months,
                               discount_rate_annual=discount_rate_annual)
    out["expected_purchases"] = purchases
    out["expected_avg_spend"] = avg
    out["clv"] = clv
    return out


def _forecast_scores(actual: np.ndarray, forecasts: dict[str, np.ndarray]) -> dict[str, dict]:
    return {name: {"mae": metrics.mae(actual, f), "rmse": metrics.rmse(actual, f),
                   "aggregate_error_pct": metrics.aggregate_error_pct(actual, f),
                   "normalised_gini": metrics.normalised_gini(actual, f),
                   "total_predicted": float(np.sum(f))}
            for name, f in forecasts.items()}


def _by_frequency(x: np.ndarray, actual: np.ndarray, predicted: np.ndarray) -> list[dict]:
    group = np.minimum(x, FREQUENCY_GROUPS).astype(int)
    rows = []
    for g in range(FREQUENCY_GROUPS + 1):
        sel = group == g
        if sel.any():
            rows.append({"calibration_repeat_purchases": f"{g}+" if g == FREQUENCY_GROUPS
                         else str(g), "customers": int(sel.sum()),
                         "mean_actual": float(actual[sel].mean()),
                         "mean_predicted": float(predicted[sel].mean())})
    return rows


@dataclass
class Validation:
    """Holdout accuracy of the calibration fit."""

    holdout_weeks: float
    customers: int
    purchases: dict[str, dict]
    spend: dict[str, dict]
    spend_per_purchase: dict[str, dict]
    p_purchase: dict[str, float]
    deciles: list[dict]
    by_frequency: list[dict]
    total_actual_purchases: float
    total_actual_spend: float
    #: P(buys in the holdout) per calibration customer (reference for the churn classifier)
    p_purchase_holdout: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "p_purchase_holdout"}


def validate(bg: BgNbdParams, spend: SpendFit, cal: pd.DataFrame, *,
             holdout_weeks: float) -> Validation:
    """Score the calibration fit on the holdout.

    ``cal`` holds the calibration summary (``x``, ``t_x``, ``T``, ``m``, ``mean_spend``) and
    the outcome (``n_holdout``, ``holdout_spend``). Baselines: everyone zero, and each
    customer repeating the calibration rate (``x / T`` purchases per week, at the calibration
    mean spend per occasion)."""
    x, t_x, T = (cal[c].to_numpy() for c in ("x", "t_x", "T"))
    actual = cal["n_holdout"].to_numpy(dtype=np.float64)
    actual_spend = cal["holdout_spend"].to_numpy(dtype=np.float64)
    pred = bgnbd.expected_purchases(bg, holdout_weeks, x, t_x, T)
    rate = np.where(T > 0, x / np.where(T > 0, T, 1.0), 0.0) * holdout_weeks
    zero = np.zeros_like(actual)
    purchases = _forecast_scores(actual, {"model": pred, "baseline_zero": zero,
                                          "baseline_calibration_rate": rate})
    mean_spend = cal["mean_spend"].to_numpy()
    spend_fc: dict[str, np.ndarray] = {"baseline_zero": zero,
                                       "baseline_calibration_rate": rate * mean_spend}
    per_purchase: dict[str, dict] = {}
    if spend.usable:
        assert spend.fit is not None
        avg = gamma_gamma.expected_spend(spend.fit.params, x, np.nan_to_num(cal["m"]))
        spend_fc = {"model": pred * avg, **spend_fc}
        # the spend model alone: customers who bought in both periods
        both = (x > 0) & (actual > 0) & (cal["m"].to_numpy() > 0)
        if both.any():
            seen = actual_spend[both] / actual[both]
            per_purchase = {
                name: {"mae": metrics.mae(seen, f), "customers": int(both.sum())}
                for name, f in {"model": avg[both],
                                "baseline_calibration_mean": cal["m"].to_numpy()[both],
                                "baseline_population_mean": np.full(
                                    both.sum(), spend.fit.params.population_mean)}.items()}
    p_buy = 1.0 - bgnbd.prob_no_purchase(bg, holdout_weeks, x, t_x, T)
    return Validation(
        holdout_weeks=holdout_weeks, customers=int(x.size), purchases=purchases,
        spend=_forecast_scores(actual_spend, spend_fc), spend_per_purchase=per_purchase,
        p_purchase=metrics.classification((actual > 0).astype(int), p_buy),
        deciles=metrics.decile_table(actual, pred), by_frequency=_by_frequency(x, actual, pred),
        total_actual_purchases=float(actual.sum()), total_actual_spend=float(actual_spend.sum()),
        p_purchase_holdout=p_buy)

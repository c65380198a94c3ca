"""Customer lifetime value over a horizon, discounted monthly.

``CLV = sum over months i = 1..H of E[purchases in month i] * E[spend per purchase] / (1 + d)^(i/12)``
with ``d`` the annual discount rate. Two sources of the monthly purchases:

* :func:`model_clv` (dated data): the BG/NBD conditional expectation for each customer,
  times the Gamma-Gamma expected spend;
* :func:`heuristic_clv` (snapshot data without dates): the customer's *stated* cadence per
  year spread evenly over the months, times the spend seen, assuming the customer stays for
  the whole horizon. It is a labelled heuristic, an upper-bound style figure, not a model.
"""

from __future__ import annotations

import numpy as np

from . import bgnbd
from .bgnbd import BgNbdParams
from .mle import compress

#: Weeks in an average month (BG/NBD time is in weeks).
WEEKS_PER_MONTH = 365.25 / 12.0 / 7.0


def discount_factors(horizon_months: int, discount_rate_annual: float) -> np.ndarray:
    """``(1 + d)^(-i/12)`` for months ``i = 1..horizon_months`` (cash at the end of month i)."""
    months = np.arange(1, horizon_months + 1, dtype=np.float64)
    return (1.0 + discount_rate_annual) ** (-months / 12.0)


def model_clv(params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
              spend: np.ndarray, *, horizon_months: int,
              discount_rate_annual: float) -> tuple[np.ndarray, np.ndarray]:
    """(expected purchases over the horizon, discounted CLV) per customer.

    The conditional expectations are evaluated once per distinct ``(x, t_x, T)`` and month,
    then mapped back to the customers."""
    (ux, utx, uT), _, inverse = compress(x, t_x, T)
    cum = np.vstack([np.zeros_like(ux)] + [
        bgnbd.expected_purchases(params, i * WEEKS_PER_MONTH, ux, utx, uT)
        for i in range(1, horizon_months + 1)])
    monthly = np.diff(cum, axis=0)
    discounted = discount_factors(horizon_months, discount_rate_annual) @ monthly
    return cum[-1][inverse], discounted[inverse] * np.asarray(spend, dtype=np.float64)


def heuristic_clv(purchases_per_year: np.ndarray, spend: np.ndarray, *, horizon_months: int,
                  discount_rate_annual: float) -> tuple[np.ndarray, np.ndarray]:
    """(purchases over the horizon, discounted CLV) from a stated cadence, assuming the
    customer stays for the whole horizon and spends what was seen. NaN where the cadence or
    the spend is unknown."""
    per_month = np.asarray(purchases_per_year, dtype=np.float64) / 12.0
    purchases = per_month * horizon_months
    discounted = per_month * discount_factors(horizon_months, discount_rate_annual).sum()
    return purchases, discounted * np.asarray(spend, dtype=np.float64)

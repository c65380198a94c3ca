"""Draw customer summaries straight from BG/NBD + Gamma-Gamma, for benchmarks and tests.

:mod:`purchase_patterns.generate` simulates purchase *lines* (with seasonality, categories,
demographics) to feed the whole pipeline; this module skips the lines and draws the
sufficient statistics ``(x, t_x, T, m)`` exactly, so a million customers take a second and
the fitted parameters can be compared with the truth without any pipeline in between.

Per customer: ``lambda ~ Gamma(r, alpha)``, ``p ~ Beta(a, b)``; ``N ~ Poisson(lambda T)``
events fall uniformly on ``(0, T]``; the customer drops out right after the ``K``-th repeat
purchase, ``K ~ Geometric(p)``, so ``x = min(N, K)`` and ``t_x`` is the ``x``-th of ``N``
uniform order statistics, ``T * Beta(x, N - x + 1)``. Spend: ``nu ~ Gamma(q, gamma)`` and the
sum of ``x`` values ``Gamma(p, nu)`` is ``Gamma(p x, nu)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .bgnbd import BgNbdParams
from .gamma_gamma import GammaGammaParams


def simulate_summaries(n: int, bgnbd: BgNbdParams, spend: GammaGammaParams, *,
                       T_min: float, T_max: float, seed: int = 0,
                       time_step: float | None = None) -> pd.DataFrame:
    """``n`` customers with observation lengths ``T ~ Uniform(T_min, T_max)``.

    ``time_step`` rounds ``T`` and ``t_x`` down to a grid (``1/7`` for day-resolution dates
    in weeks), as real purchase dates are. Returns columns ``x``, ``t_x``, ``T``, ``m`` (mean
    repeat spend, NaN when ``x = 0``)."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(T_min, T_max, n)
    lam = rng.gamma(bgnbd.r, 1.0 / bgnbd.alpha, n)
    p_drop = rng.beta(bgnbd.a, bgnbd.b, n)
    events = rng.poisson(lam * T)
    last_purchase = rng.geometric(np.clip(p_drop, 1e-12, 1.0))
    x = np.minimum(events, last_purchase)
    has = x > 0
    t_x = np.zeros(n)
    t_x[has] = T[has] * rng.beta(x[has], events[has] - x[has] + 1)
    if time_step:
        T = np.floor(T / time_step) * time_step
        t_x = np.minimum(np.floor(t_x / time_step) * time_step, T)
    nu = rng.gamma(spend.q, 1.0 / spend.gamma, n)
    m = np.full(n, np.nan)
    m[has] = rng.gamma(spend.p * x[has], 1.0 / nu[has]) / x[has]
    return pd.DataFrame({"x": x.astype(np.float64), "t_x": t_x, "T": T, "m": m})

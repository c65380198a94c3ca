"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005; Fader & Hardie 2013 note), fitted by
maximum likelihood.

Input per customer with at least one repeat purchase: ``x`` repeat purchase occasions and
``m`` the mean value of those repeat occasions (the first purchase is excluded, as in the
papers). Each transaction value is ``Gamma(p, nu)``; ``nu ~ Gamma(q, gamma)`` across customers,
so the mean spend of a customer is shrunk towards the population mean ``p * gamma / (q - 1)``
the fewer purchases are seen. The model assumes spend is independent of purchase frequency;
:func:`frequency_spend_correlation` measures that assumption for the model card.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import special

from .mle import Fit, compress, maximise


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float

    def as_array(self) -> np.ndarray:
        return np.array([self.p, self.q, self.gamma], dtype=np.float64)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def population_mean(self) -> float:
        """Mean transaction value over customers, ``p * gamma / (q - 1)``; NaN when ``q <= 1``
        (the mean does not exist)."""
        return self.p * self.gamma / (self.q - 1.0) if self.q > 1.0 else float("nan")


def _check(x: np.ndarray, m: np.ndarray) -> None:
    if x.shape != m.shape:
        raise ValueError("x and m must have the same length")
    if x.size == 0:
        raise ValueError("no repeat customers to fit the spend model on")
    if np.any(x < 1) or np.any(m <= 0) or not np.all(np.isfinite(m)):
        raise ValueError("the spend model needs x >= 1 and a positive finite mean spend m")


@dataclass(frozen=True)
class _Rows:
    """Repeat customers prepared for repeated likelihood evaluations: special functions of
    ``x`` on its distinct values, the data's logs computed once."""

    x: np.ndarray
    mx: np.ndarray  # total repeat spend m * x
    log_mx: np.ndarray
    log_m: np.ndarray
    ux: np.ndarray
    xi: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, m: np.ndarray) -> _Rows:
        ux, xi = np.unique(x, return_inverse=True)
        return cls(x, m * x, np.log(m * x), np.log(m), ux, xi.ravel())


def _loglik_terms(logp: np.ndarray, d: _Rows,
                  with_grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-row log density of the mean spend ``m`` given ``x`` (Fader & Hardie 2013, eq. 5),
    ``G(px+q)/(G(px)G(q)) g^q m^(px-1) x^(px) / (g + m x)^(px+q)``, and optionally its
    gradient w.r.t. the log parameters."""
    p, q, g = np.exp(logp)
    pux = p * d.ux
    px = p * d.x
    log_gmx = np.log(g + d.mx)
    by_x = special.gammaln(pux + q) - special.gammaln(pux)
    ll = (by_x[d.xi] - special.gammaln(q) + q * np.log(g) + px * d.log_mx - d.log_m
          - (px + q) * log_gmx)
    if not with_grad:
        return ll, None
    dig_pxq = special.digamma(pux + q)
    d_p = d.x * ((dig_pxq - special.digamma(pux))[d.xi] + d.log_mx - log_gmx)
    d_q = dig_pxq[d.xi] - special.digamma(q) + np.log(g) - log_gmx
    d_g = q / g - (px + q) / (g + d.mx)
    return ll, np.stack([d_p * p, d_q * q, d_g * g])


def log_likelihood(params: GammaGammaParams, x: np.ndarray, m: np.ndarray,
                   weights: np.ndarray | None = None) -> float:
    x, m = np.asarray(x, dtype=np.float64), np.asarray(m, dtype=np.float64)
    ll, _ = _loglik_terms(np.log(params.as_array()), _Rows.of(x, m), with_grad=False)
    w = np.ones_like(ll) if weights is None else np.asarray(weights, dtype=np.float64)
    return float(w @ ll)


def fit(x: np.ndarray, m: np.ndarray, *,
        weights: np.ndarray | None = None) -> Fit[GammaGammaParams]:
    """Maximum-likelihood Gamma-Gamma fit on repeat customers (``x >= 1``, ``m > 0``), by the
    same recipe as the BG/NBD fit (:func:`purchase_patterns.predict.mle.maximise`), started
    from the method of moments."""
    x, m = np.asarray(x, dtype=np.float64), np.asarray(m, dtype=np.float64)
    _check(x, m)
    if weights is None:
        (x, m), w, _ = compress(x, m)
    else:
        w = np.asarray(weights, dtype=np.float64)
    n = float(w.sum())
    mean = float(w @ m) / n
    var = max(float(w @ (m - mean) ** 2) / n, 1e-9 * mean**2)
    # with q = 4 the population mean is p * gamma / 3; p from the spread of customer means
    p0 = float(np.clip(mean**2 / var, 0.5, 50.0))
    start = np.log([p0, 4.0, 3.0 * mean / p0])
    rows = _Rows.of(x, m)
    return maximise(lambda lp, g: _loglik_terms(lp, rows, g), w, start, ("p", "q", "gamma"),
                    GammaGammaParams)


def expected_spend(params: GammaGammaParams, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """E[value of a future transaction | x, m]: a credibility-weighted mix of the customer's
    own mean ``m`` and the population mean (customers with ``x = 0`` get the population mean;
    their ``m`` is ignored)."""
    p, q, g = params.as_array()
    x = np.asarray(x, dtype=np.float64)
    m = np.where(x > 0, np.asarray(m, dtype=np.float64), 0.0)
    return (g + m * x) * p / (p * x + q - 1.0)


def frequency_spend_correlation(x: np.ndarray, m: np.ndarray) -> float:
    """Pearson correlation between repeat purchases and mean repeat spend (repeat customers).
    The Gamma-Gamma model assumes it is close to zero."""
    x, m = np.asarray(x, dtype=np.float64), np.asarray(m, dtype=np.float64)
    if x.size < 3 or np.std(x) == 0 or np.std(m) == 0:
        return float("nan")
    return float(np.corrcoef(x, m)[0, 1])

"""Published maximum-likelihood estimates on the CDNOW 1/10th sample, and how to recognise it.

The benchmark: 2,357 customers who first bought at CDNOW in Q1 1997, purchases to 1998-06-30;
the 39-week calibration period ends on 1997-09-30. Conventions (Hardie, "Creating an RFM
summary using Excel", brucehardie.com/notes/022): purchases on the same day are one
transaction, ``x`` counts repeat transactions, time is in weeks, the first purchase day is
time 0, and ``T`` runs from it to 1997-09-30. This package's fit of that summary gives the
published log-likelihood to the first decimal, which confirms the convention.
"""

from __future__ import annotations

from datetime import date

from .bgnbd import BgNbdParams
from .gamma_gamma import GammaGammaParams

CDNOW_SAMPLE_CUSTOMERS = 2357
CDNOW_FIRST_DATE = date(1997, 1, 1)
CDNOW_LAST_DATE = date(1998, 6, 30)
CDNOW_CALIBRATION_END = date(1997, 9, 30)

BGNBD_SOURCE = ("Fader, Hardie & Lee (2005), 'Counting Your Customers the Easy Way: An "
                "Alternative to the Pareto/NBD Model', Marketing Science 24(2), 275-284: "
                "BG/NBD MLEs on the CDNOW sample, 39-week calibration")
BGNBD_PUBLISHED = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
BGNBD_PUBLISHED_LL = -9582.4

GAMMA_GAMMA_SOURCE = ("Fader, Hardie & Lee (2005), 'RFM and CLV: Using Iso-Value Curves for "
                      "Customer Base Analysis', Journal of Marketing Research 42(4), 415-430, "
                      "and Fader & Hardie (2013), 'The Gamma-Gamma Model of Monetary Value' "
                      "(brucehardie.com/notes/025): the 946 customers with repeat purchases in "
                      "the 39-week calibration period, mean repeat transaction value")
GAMMA_GAMMA_PUBLISHED = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)


def is_cdnow_sample(n_customers: int, first: date, last: date) -> bool:
    """True when the data look like the CDNOW 1/10th sample (size and date range)."""
    return (n_customers == CDNOW_SAMPLE_CUSTOMERS and first == CDNOW_FIRST_DATE
            and last == CDNOW_LAST_DATE)

"""Seeded synthetic purchase generator with a known ground truth.

The output follows the Kaggle "customer shopping trends" layout (the 19 columns of
:data:`~purchase_patterns.schema.KAGGLE_HEADERS_19`, in order) plus ``Purchase Date``, with one
row per purchase, so that a customer appears on several rows. The purchase process is a
heterogeneous buy-till-you-die model with known parameters, written beside the data as
``<name>.truth.json`` so that model fits (BG/NBD, Gamma-Gamma, seasonality) can be checked against
the truth.

The process, per customer:

* transaction rate ``lambda ~ Gamma(shape=r, rate=alpha)`` per week and dropout probability
  ``p ~ Beta(a, b)`` (BG/NBD, Fader, Hardie & Lee 2005);
* the first purchase ("birth") is uniform over the first ``birth_fraction`` (2/3) of
  ``[start, end]``;
* repeat purchases arrive as a Poisson process with intensity ``lambda * m(t)``, where ``m`` is a
  month-of-year multiplier with a day-weighted annual mean of 1 (holiday peak in Nov-Dec, summer
  bump). It is simulated by thinning: candidates at the envelope rate ``lambda * max(m)`` are
  accepted with probability ``m(t) / max(m)``. ``r, alpha, a, b`` therefore describe the
  de-seasonalised process (time measured in seasonally adjusted weeks);
* as in BG/NBD, the customer drops out immediately after each *repeat* purchase with probability
  ``p`` (the number of repeat purchases before dropout is geometric), or is censored at ``end``;
* spend per purchase is Gamma-Gamma (Fader, Hardie & Lee 2005): ``z ~ Gamma(shape=p_gg,
  rate=nu)`` with ``nu ~ Gamma(shape=q, rate=gamma)`` per customer, times a category price factor
  (normalised to 1 over the annual category mix), rounded to cents and at least 1.00 USD.

Everything else (item and category by season, size, colour, rating, payment, shipping, discount
and promo flags, customer demographics, state by 2020 population, stated frequency loosely tied
to ``lambda``) is drawn from simple documented distributions.

Randomness comes from one :class:`numpy.random.Generator` per fixed block of
:data:`BLOCK_CUSTOMERS` customers, seeded with the ``i``-th child of ``SeedSequence(seed)`` (the
same as ``SeedSequence(seed).spawn(n)[i]``). The output is therefore byte-identical for the same
arguments and, for CSV, does not depend on ``chunk_customers`` (Parquet row groups follow the
chunks). Rows are grouped by customer (ids 1..N ascending) and ordered by date within a customer.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import __version__
from .errors import UsageError
from .schema import CATEGORY_ITEMS, FREQUENCY_PER_YEAR, KAGGLE_HEADERS_19, SEASONS, US_STATES

__all__ = [
    "BLOCK_CUSTOMERS",
    "DATE_COLUMN",
    "DEFAULT_PARAMS",
    "MONTH_MULTIPLIERS",
    "OUTPUT_COLUMNS",
    "GenerationResult",
    "TrueParams",
    "generate",
    "truth_path_for",
]

OutputFormat = Literal["csv", "parquet"]

#: Column added after the 19 Kaggle headers.
DATE_COLUMN = "Purchase Date"
#: Output columns, in file order.
OUTPUT_COLUMNS: tuple[str, ...] = (*KAGGLE_HEADERS_19, DATE_COLUMN)

#: Customers per random-number block (one child seed each); also the chunk granularity.
BLOCK_CUSTOMERS = 10_000

_DAYS_PER_WEEK = 7.0
_WEEKS_PER_YEAR = 365.25 / 7.0
_GZIP_LEVEL = 6
_U_BITS = 40  # resolution of the within-window uniforms (block ids need < 2**23)
_U_SCALE = 1 << _U_BITS


@dataclass(frozen=True)
class TrueParams:
    """True parameters of the simulated process (BG/NBD time unit: one week)."""

    #: BG/NBD: shape of the Gamma prior on the weekly transaction rate lambda.
    r: float = 0.75
    #: BG/NBD: rate of the Gamma prior on lambda (weeks); mean lambda = r / alpha per week.
    alpha: float = 8.0
    #: BG/NBD: Beta(a, b) prior on the dropout probability p.
    a: float = 0.8
    b: float = 2.5
    #: Gamma-Gamma: shape of the per-transaction spend Gamma.
    p: float = 6.0
    #: Gamma-Gamma: shape of the Gamma prior on the per-customer spend rate nu.
    q: float = 4.0
    #: Gamma-Gamma: rate of the Gamma prior on nu (USD); mean spend = p * gamma / (q - 1).
    gamma: float = 25.0
    #: First purchases are uniform over this leading fraction of ``[start, end]``.
    birth_fraction: float = 2.0 / 3.0

    def __post_init__(self) -> None:
        for name in ("r", "alpha", "a", "b", "p", "q", "gamma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"true parameter {name} must be a positive number, got {value}")
        if not 0 < self.birth_fraction <= 1:
            raise UsageError("birth_fraction must be in (0, 1]")


#: Default truth: mean rate 4.9 purchases/year, mean dropout probability 0.24, mean spend 50 USD.
DEFAULT_PARAMS = TrueParams()

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.float64)
_RAW_MONTH_MULTIPLIERS = np.array(
    [0.85, 0.72, 0.88, 0.95, 1.0, 1.1, 1.15, 1.05, 0.9, 0.95, 1.35, 1.55], dtype=np.float64
)
#: Month-of-year intensity multipliers (Jan..Dec), day-weighted mean over a 365-day year = 1.
MONTH_MULTIPLIERS: tuple[float, ...] = tuple(
    float(x)
    for x in _RAW_MONTH_MULTIPLIERS
    / (float(_RAW_MONTH_MULTIPLIERS @ _DAYS_IN_MONTH) / float(_DAYS_IN_MONTH.sum()))
)

# -- reference value sets (as in the Kaggle file) --------------------------------------------
_SIZES = ("S", "M", "L", "XL")
_SIZE_P = (0.17, 0.45, 0.27, 0.11)
_COLORS = (
    "Beige", "Black", "Blue", "Brown", "Charcoal", "Cyan", "Gold", "Gray", "Green", "Indigo",
    "Lavender", "Magenta", "Maroon", "Olive", "Orange", "Peach", "Pink", "Purple", "Red",
    "Silver", "Teal", "Turquoise", "Violet", "White", "Yellow",
)
_PAYMENTS = ("Bank Transfer", "Cash", "Credit Card", "Debit Card", "PayPal", "Venmo")
_SHIPPING = ("2-Day Shipping", "Express", "Free Shipping", "Next Day Air", "Standard",
             "Store Pickup")
_GENDERS = ("Female", "Male")
_GENDER_P = (0.52, 0.48)
_YES_NO = ("No", "Yes")
_AGE_MIN, _AGE_MAX = 18, 70
_RATING_MIN_TENTHS, _RATING_MAX_TENTHS = 25, 50
_MAX_PREVIOUS = 50
#: Probability that a purchase uses the customer's preferred payment method.
_P_PREFERRED_PAYMENT = 0.6
_P_DISCOUNT = (0.25, 0.6)  # (non-subscriber, subscriber)
_P_PROMO_GIVEN_DISCOUNT = 0.65

_STATE_NAMES = tuple(US_STATES)
_STATE_P = np.array([v[3] for v in US_STATES.values()], dtype=np.float64)
_STATE_P /= _STATE_P.sum()

# Stated cadence: labels grouped by tier of purchases per year (from FREQUENCY_PER_YEAR).
_FREQ_LABELS = tuple(FREQUENCY_PER_YEAR)
_FREQ_TIERS = tuple(sorted(set(FREQUENCY_PER_YEAR.values())))
_FREQ_TIER_LABELS: tuple[tuple[int, ...], ...] = tuple(
    tuple(i for i, lab in enumerate(_FREQ_LABELS) if FREQUENCY_PER_YEAR[lab] == rate)
    for rate in _FREQ_TIERS
)
_FREQ_NOISE_SD = 0.8  # log-scale noise between the true rate and the stated cadence

# -- items, categories and seasons -------------------------------------------------------------
_CATEGORIES = tuple(CATEGORY_ITEMS)
_ITEMS = tuple(item for items in CATEGORY_ITEMS.values() for item in items)
_ITEM_CATEGORY = np.array(
    [ci for ci, items in enumerate(CATEGORY_ITEMS.values()) for _ in items], dtype=np.int8
)
#: Category share by season (rows: SEASONS order; columns: CATEGORY_ITEMS order).
_CATEGORY_SEASON_MIX: dict[str, dict[str, float]] = {
    "Winter": {"Clothing": 0.42, "Footwear": 0.14, "Outerwear": 0.14, "Accessories": 0.30},
    "Spring": {"Clothing": 0.46, "Footwear": 0.15, "Outerwear": 0.07, "Accessories": 0.32},
    "Summer": {"Clothing": 0.47, "Footwear": 0.17, "Outerwear": 0.02, "Accessories": 0.34},
    "Fall": {"Clothing": 0.42, "Footwear": 0.15, "Outerwear": 0.13, "Accessories": 0.30},
}
#: Relative item weight within its category by season (Winter, Spring, Summer, Fall); default 1.
_ITEM_SEASON_WEIGHT: dict[str, tuple[float, float, float, float]] = {
    "Sweater": (2.0, 0.8, 0.2, 1.5),
    "Hoodie": (1.6, 1.0, 0.4, 1.4),
    "Jeans": (1.1, 1.0, 0.8, 1.2),
    "Shorts": (0.1, 1.0, 3.0, 0.4),
    "T-shirt": (0.5, 1.1, 2.0, 0.8),
    "Dress": (0.6, 1.2, 1.6, 0.8),
    "Skirt": (0.6, 1.2, 1.5, 0.9),
    "Boots": (2.2, 0.7, 0.2, 1.6),
    "Sandals": (0.1, 1.0, 3.5, 0.3),
    "Coat": (2.0, 0.6, 0.1, 1.3),
    "Jacket": (1.3, 1.2, 0.4, 1.6),
    "Gloves": (3.0, 0.5, 0.1, 1.2),
    "Scarf": (2.5, 0.7, 0.2, 1.4),
    "Hat": (1.3, 0.9, 1.2, 0.9),
    "Sunglasses": (0.3, 1.2, 2.8, 0.6),
}
#: Raw price factor per category (normalised below to mean 1 over the annual purchase mix).
_RAW_CATEGORY_FACTOR = {"Clothing": 1.0, "Footwear": 1.25, "Outerwear": 1.6, "Accessories": 0.7}


def _item_season_probs() -> np.ndarray:
    """P(item | season) as a (4, n_items) array."""
    probs = np.zeros((len(SEASONS), len(_ITEMS)), dtype=np.float64)
    for si, season in enumerate(SEASONS):
        for ci, (cat, items) in enumerate(CATEGORY_ITEMS.items()):
            idx = np.flatnonzero(np.equal(_ITEM_CATEGORY, ci))
            w = np.array([_ITEM_SEASON_WEIGHT.get(it, (1.0,) * 4)[si] for it in items])
            probs[si, idx] = _CATEGORY_SEASON_MIX[season][cat] * w / w.sum()
        probs[si] /= probs[si].sum()
    return probs


def _month_season(month: np.ndarray) -> np.ndarray:
    """Meteorological northern-hemisphere season index (SEASONS order) of months 1..12."""
    return (month % 12) // 3


_ITEM_SEASON_P = _item_season_probs()
# Share of purchases per season over a year (from the month multipliers and month lengths).
_SEASON_SHARE = np.bincount(
    _month_season(np.arange(1, 13)),
    weights=np.array(MONTH_MULTIPLIERS) * _DAYS_IN_MONTH,
    minlength=len(SEASONS),
)
_SEASON_SHARE /= _SEASON_SHARE.sum()
_ANNUAL_CATEGORY_MIX = np.bincount(
    _ITEM_CATEGORY, weights=_SEASON_SHARE @ _ITEM_SEASON_P, minlength=len(_CATEGORIES)
)
_CATEGORY_FACTOR = np.array([_RAW_CATEGORY_FACTOR[c] for c in _CATEGORIES])
_CATEGORY_FACTOR /= float(_CATEGORY_FACTOR @ _ANNUAL_CATEGORY_MIX)
_ITEM_FACTOR = _CATEGORY_FACTOR[_ITEM_CATEGORY]

_SEASON_CATEGORY_MIX = np.array(
    [[_CATEGORY_SEASON_MIX[s][c] for c in _CATEGORIES] for s in SEASONS], dtype=np.float64
)


@dataclass(frozen=True)
class GenerationResult:
    """What :func:`generate` wrote."""

    path: Path
    rows: int
    customers: int
    truth_path: Path
    seconds: float


@dataclass(frozen=True)
class _Calendar:
    """Per-day lookups over ``[start, end]`` (day 0 = ``start``)."""

    start: date
    days: int
    #: date32 value (days since 1970-01-01) of day 0
    epoch_day: int
    season: np.ndarray  # int8, per day
    month: np.ndarray  # int8 1..12, per day
    accept: np.ndarray  # float64, per day: m(month) / max(m)
    envelope: float  # max(m)

    @classmethod
    def build(cls, start: date, end: date) -> _Calendar:
        days = (end - start).days + 1
        dates = np.datetime64(start.isoformat(), "D") + np.arange(days)
        month = (dates.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(np.int8)
        mult = np.asarray(MONTH_MULTIPLIERS)
        envelope = float(mult.max())
        return cls(
            start=start,
            days=days,
            epoch_day=(start - date(1970, 1, 1)).days,
            season=_month_season(month).astype(np.int8),
            month=month,
            accept=mult[month - 1] / envelope,
            envelope=envelope,
        )


@dataclass
class _Block:
    """Simulated rows of one block of customers (numpy arrays, rows grouped by customer)."""

    first_id: int
    rows_per_customer: np.ndarray
    # customer level (length n)
    age: np.ndarray
    gender: np.ndarray
    state: np.ndarray
    subscribed: np.ndarray
    previous: np.ndarray
    preferred: np.ndarray
    frequency: np.ndarray
    # row level (length rows)
    day: np.ndarray
    item: np.ndarray
    amount_cents: np.ndarray
    size: np.ndarray
    color: np.ndarray
    rating_tenths: np.ndarray
    payment: np.ndarray
    shipping: np.ndarray
    discount: np.ndarray
    promo: np.ndarray


def _draw_grouped(rng: np.random.Generator, probs: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Draw one category per element from ``probs[group[i]]`` (rows of ``probs`` sum to 1)."""
    k, m = probs.shape
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0
    flat = (cum + np.arange(k)[:, None]).ravel()
    u = rng.random(group.shape[0]) + group
    idx = np.searchsorted(flat, u, side="right")
    return np.minimum(idx - group.astype(np.int64) * m, m - 1)


def _stated_frequency(rng: np.random.Generator, lam_week: np.ndarray) -> np.ndarray:
    """Stated cadence label index, loosely tied to the true weekly rate."""
    n = lam_week.shape[0]
    noisy = np.log(np.maximum(lam_week * _WEEKS_PER_YEAR, 1e-9)) + rng.normal(
        0.0, _FREQ_NOISE_SD, n
    )
    tiers = np.log(np.array(_FREQ_TIERS))
    cuts = (tiers[1:] + tiers[:-1]) / 2.0
    tier = np.searchsorted(cuts, noisy)
    pick = rng.random(n)
    out = np.empty(n, dtype=np.int8)
    for t, labels in enumerate(_FREQ_TIER_LABELS):
        sel = tier == t
        out[sel] = np.asarray(labels, dtype=np.int8)[
            np.minimum((pick[sel] * len(labels)).astype(np.int64), len(labels) - 1)
        ]
    return out


def _simulate_block(
    rng: np.random.Generator, first_id: int, n: int, cal: _Calendar, params: TrueParams
) -> _Block:
    """Simulate ``n`` customers (ids ``first_id`` ..) fully vectorised."""
    horizon = float(cal.days)
    # --- customer-level latent variables
    lam_week = rng.gamma(params.r, 1.0 / params.alpha, n)
    p_drop = np.clip(rng.beta(params.a, params.b, n), 1e-9, 1.0)
    repeats_until_death = rng.geometric(p_drop)  # dies right after this repeat purchase
    nu = rng.gamma(params.q, 1.0 / params.gamma, n)
    birth = rng.random(n) * (params.birth_fraction * horizon)

    # --- candidate repeat events: homogeneous Poisson at the envelope rate on (birth, end]
    window = horizon - birth
    n_cand = rng.poisson(lam_week / _DAYS_PER_WEEK * cal.envelope * window)
    owner = np.repeat(np.arange(n, dtype=np.int64), n_cand)
    # uniform positions in the window, sorted within customer via an exact integer key
    key = (owner << _U_BITS) | (rng.random(owner.shape[0]) * _U_SCALE).astype(np.int64)
    key.sort()
    u = ((key & (_U_SCALE - 1)) + 0.5) / _U_SCALE
    t = np.minimum(birth[owner] + u * window[owner], np.nextafter(horizon, 0.0))
    day_c = t.astype(np.int64)
    accepted = rng.random(owner.shape[0]) < cal.accept[day_c]

    # rank of each accepted candidate within its customer; keep those before dropout
    cs = np.cumsum(accepted, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(n_cand)))[:-1]
    before = np.concatenate(([0], cs))[starts]
    rank = cs - 1 - before[owner]
    keep = accepted & (rank < repeats_until_death[owner])
    k_owner, k_rank, k_day = owner[keep], rank[keep], day_c[keep]
    kept = np.bincount(k_owner, minlength=n)

    # --- assemble rows: birth row then repeats, per customer
    rows_per_customer = 1 + kept
    row_start = np.concatenate(([0], np.cumsum(rows_per_customer)))[:-1]
    n_rows = int(rows_per_customer.sum())
    day = np.empty(n_rows, dtype=np.int32)
    day[row_start] = birth.astype(np.int32)
    day[row_start[k_owner] + 1 + k_rank] = k_day
    row_owner = np.repeat(np.arange(n, dtype=np.int64), rows_per_customer)

    # --- customer attributes
    age = rng.integers(_AGE_MIN, _AGE_MAX + 1, n, dtype=np.int16)
    gender = rng.choice(len(_GENDERS), n, p=_GENDER_P).astype(np.int8)
    state = rng.choice(len(_STATE_NAMES), n, p=_STATE_P).astype(np.int8)
    per_year = lam_week * _WEEKS_PER_YEAR
    subscribed = rng.random(n) < 0.12 + 0.33 * (1.0 - np.exp(-per_year / 12.0))
    tenure_years = rng.random(n) * 2.0
    previous = np.minimum(rng.poisson(per_year * tenure_years), _MAX_PREVIOUS).astype(np.int16)
    preferred = rng.integers(0, len(_PAYMENTS), n, dtype=np.int8)
    frequency = _stated_frequency(rng, lam_week)

    # --- purchase lines
    season = cal.season[day]
    item = _draw_grouped(rng, _ITEM_SEASON_P, season).astype(np.int8)
    spend = rng.gamma(params.p, 1.0, n_rows) / nu[row_owner] * _ITEM_FACTOR[item]
    amount_cents = np.maximum(np.rint(spend * 100.0), 100.0).astype(np.int64)
    size = rng.choice(len(_SIZES), n_rows, p=_SIZE_P).astype(np.int8)
    color = rng.integers(0, len(_COLORS), n_rows, dtype=np.int8)
    rating_tenths = rng.integers(_RATING_MIN_TENTHS, _RATING_MAX_TENTHS + 1, n_rows,
                                 dtype=np.int64)
    other_payment = rng.integers(0, len(_PAYMENTS), n_rows, dtype=np.int8)
    payment = np.where(
        rng.random(n_rows) < _P_PREFERRED_PAYMENT, preferred[row_owner], other_payment
    ).astype(np.int8)
    shipping = rng.integers(0, len(_SHIPPING), n_rows, dtype=np.int8)
    p_discount = np.where(subscribed[row_owner], _P_DISCOUNT[1], _P_DISCOUNT[0])
    discount = rng.random(n_rows) < p_discount
    promo = discount & (rng.random(n_rows) < _P_PROMO_GIVEN_DISCOUNT)

    return _Block(
        first_id=first_id,
        rows_per_customer=rows_per_customer,
        age=age,
        gender=gender,
        state=state,
        subscribed=subscribed,
        previous=previous,
        preferred=preferred,
        frequency=frequency,
        day=day,
        item=item,
        amount_cents=amount_cents,
        size=size,
        color=color,
        rating_tenths=rating_tenths,
        payment=payment,
        shipping=shipping,
        discount=discount,
        promo=promo,
    )


# --------------------------------------------------------------------------------------------
# Arrow assembly


def _dict_array(indices: np.ndarray, values: tuple[str, ...]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        pa.array(indices.astype(np.int8, copy=False)), pa.array(values, type=pa.string())
    )


def _decimal_array(unscaled: np.ndarray, precision: int, scale: int) -> pa.Array:
    """decimal128 array from non-negative unscaled int64 values (no per-value Python work)."""
    words = np.zeros((unscaled.shape[0], 2), dtype=np.int64)
    words[:, 0] = unscaled
    return pa.Array.from_buffers(
        pa.decimal128(precision, scale), unscaled.shape[0], [None, pa.py_buffer(words)]
    )


def _schema(fmt: OutputFormat) -> pa.Schema:
    cat = pa.dictionary(pa.int8(), pa.string())
    rating = pa.decimal128(3, 1) if fmt == "csv" else pa.float64()
    types = {
        "Customer ID": pa.string(),
        "Age": pa.int16(),
        "Purchase Amount (USD)": pa.decimal128(10, 2),
        "Review Rating": rating,
        "Previous Purchases": pa.int16(),
        DATE_COLUMN: pa.date32(),
    }
    return pa.schema([pa.field(name, types.get(name, cat)) for name in OUTPUT_COLUMNS])


def _chunk_table(blocks: list[_Block], cal: _Calendar, fmt: OutputFormat) -> pa.Table:
    """Concatenate simulated blocks into one Arrow table in output column order."""

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(b, name) for b in blocks])

    rows_per_customer = cat("rows_per_customer")
    ids = np.concatenate(
        [b.first_id + np.arange(b.rows_per_customer.shape[0], dtype=np.int64) for b in blocks]
    )
    row_owner = np.repeat(np.arange(ids.shape[0], dtype=np.int64), rows_per_customer)

    def cust(name: str) -> np.ndarray:
        return cat(name)[row_owner]

    day = cat("day")
    item = cat("item")
    tenths = cat("rating_tenths")
    rating: pa.Array
    if fmt == "csv":
        rating = _decimal_array(tenths, 3, 1)
    else:
        rating = pa.array(tenths / 10.0, type=pa.float64())
    columns: dict[str, pa.Array] = {
        "Customer ID": pc.cast(pa.array(np.repeat(ids, rows_per_customer)), pa.string()),
        "Age": pa.array(cust("age")),
        "Gender": _dict_array(cust("gender"), _GENDERS),
        "Item Purchased": _dict_array(item, _ITEMS),
        "Category": _dict_array(_ITEM_CATEGORY[item], _CATEGORIES),
        "Purchase Amount (USD)": _decimal_array(cat("amount_cents"), 10, 2),
        "Location": _dict_array(cust("state"), _STATE_NAMES),
        "Size": _dict_array(cat("size"), _SIZES),
        "Color": _dict_array(cat("color"), _COLORS),
        "Season": _dict_array(cal.season[day], SEASONS),
        "Review Rating": rating,
        "Subscription Status": _dict_array(cust("subscribed"), _YES_NO),
        "Payment Method": _dict_array(cat("payment"), _PAYMENTS),
        "Shipping Type": _dict_array(cat("shipping"), _SHIPPING),
        "Discount Applied": _dict_array(cat("discount"), _YES_NO),
        "Promo Code Used": _dict_array(cat("promo"), _YES_NO),
        "Previous Purchases": pa.array(cust("previous")),
        "Preferred Payment Method": _dict_array(cust("preferred"), _PAYMENTS),
        "Frequency of Purchases": _dict_array(cust("frequency"), _FREQ_LABELS),
        DATE_COLUMN: pa.array(day + np.int32(cal.epoch_day), type=pa.date32()),
    }
    return pa.Table.from_arrays(list(columns.values()), schema=_schema(fmt))


# --------------------------------------------------------------------------------------------
# output plumbing


def _resolve_format(out: Path, fmt: OutputFormat | None) -> tuple[OutputFormat, bool]:
    """(format, gzip) from the explicit ``fmt`` or the file suffix."""
    name = out.name.lower()
    gz = name.endswith(".gz")
    if fmt is None:
        if name.endswith((".csv", ".csv.gz")):
            fmt = "csv"
        elif name.endswith((".parquet", ".pq")):
            fmt = "parquet"
        else:
            raise UsageError(
                f"{out}: cannot tell the output format from the suffix; use .csv, .csv.gz or "
                ".parquet, or pass fmt"
            )
    if fmt not in ("csv", "parquet"):
        raise UsageError(f"unknown output format {fmt!r}; choose csv or parquet")
    if fmt == "parquet" and gz:
        raise UsageError(f"{out}: Parquet output cannot be gzip-compressed")
    return fmt, gz


def truth_path_for(out: Path | str) -> Path:
    """``data/purchases.csv.gz`` → ``data/purchases.truth.json`` (format suffixes removed)."""
    path = Path(out)
    name = path.name
    lower = name.lower()
    for suffix in (".gz", ".csv", ".parquet", ".pq"):
        if lower.endswith(suffix) and len(name) > len(suffix):
            name, lower = name[: -len(suffix)], lower[: -len(suffix)]
    return path.with_name(f"{name}.truth.json")


def _temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")


class _Sink:
    """Writes chunk tables to a temporary file as CSV (optionally gzip) or Parquet."""

    def __init__(self, path: Path, fmt: OutputFormat, gz: bool) -> None:
        self.fmt = fmt
        self._raw: IO[bytes] = path.open("xb")
        self._gz: gzip.GzipFile | None = None
        self._csv: pacsv.CSVWriter | None = None
        self._parquet: pq.ParquetWriter | None = None
        schema = _schema(fmt)
        if fmt == "csv":
            stream: IO[bytes] = self._raw
            if gz:
                # filename="" and mtime=0 keep the gzip header free of names and timestamps
                self._gz = gzip.GzipFile(
                    filename="", mode="wb", compresslevel=_GZIP_LEVEL, fileobj=self._raw, mtime=0
                )
                stream = self._gz
            stream.write((",".join(OUTPUT_COLUMNS) + "\n").encode("utf-8"))
            self._csv = pacsv.CSVWriter(
                stream,
                schema,
                write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"),
            )
        else:
            self._parquet = pq.ParquetWriter(
                self._raw, schema, compression="zstd", store_schema=False
            )

    def write(self, table: pa.Table) -> None:
        if self._csv is not None:
            self._csv.write_table(table)
        elif self._parquet is not None:
            self._parquet.write_table(table, row_group_size=max(table.num_rows, 1))

    def close(self) -> None:
        try:
            if self._csv is not None:
                self._csv.close()
            if self._parquet is not None:
                self._parquet.close()
            if self._gz is not None:
                self._gz.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
        finally:
            self._raw.close()

    def abort(self) -> None:
        for closer in (self._csv, self._parquet, self._gz, self._raw):
            try:
                if closer is not None:
                    closer.close()
            except Exception:  # noqa: BLE001, S110 - best effort cleanup on failure
                pass


def _write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    tmp = _temp_path(path)
    try:
        with tmp.open("x", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _truth_doc(
    *, out: Path, fmt: OutputFormat, gz: bool, seed: int, start: date, end: date,
    customers: int, rows: int, params: TrueParams,
) -> dict[str, Any]:
    mean_rate = params.r / params.alpha
    return {
        "generator": "purchase_patterns.generate",
        "version": __version__,
        "model": "BG/NBD (seasonal thinning) + Gamma-Gamma spend",
        "description": (
            "One row per purchase. Per customer: weekly rate lambda ~ Gamma(shape r, rate alpha);"
            " dropout probability p ~ Beta(a, b). First purchase uniform over the first "
            f"{params.birth_fraction:.4g} of [start, end]. Repeat purchases follow a Poisson "
            "process with intensity lambda * m(month), m normalised to a day-weighted annual "
            "mean of 1 and simulated by thinning at envelope max(m); r, alpha, a, b describe the "
            "de-seasonalised process (time in weeks). The customer drops out immediately after "
            "each repeat purchase with probability p (as in BG/NBD) or is censored at end. "
            "Spend per purchase: Gamma(shape p_gg, rate nu) with nu ~ Gamma(shape q, rate "
            "gamma) per customer, times the category price factor (mean 1 over the annual mix), "
            "rounded to cents, at least 1.00 USD."
        ),
        "data": {
            "file": out.name,
            "format": "csv.gz" if gz else fmt,
            "columns": list(OUTPUT_COLUMNS),
            "rows": rows,
            "customers": customers,
            "customer_ids": f"1..{customers}",
        },
        "seed": seed,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "time_unit": "week",
        "params": {
            "bgnbd": {"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b},
            "gamma_gamma": {"p": params.p, "q": params.q, "gamma": params.gamma},
            "birth_fraction": params.birth_fraction,
        },
        "implied": {
            "mean_weekly_rate": mean_rate,
            "mean_purchases_per_year_while_alive": mean_rate * _WEEKS_PER_YEAR,
            "mean_dropout_probability": params.a / (params.a + params.b),
            "mean_spend_usd": (
                params.p * params.gamma / (params.q - 1.0) if params.q > 1 else None
            ),
        },
        "seasonality": {
            "month_multipliers": dict(zip(_MONTH_NAMES, MONTH_MULTIPLIERS, strict=True)),
            "normalisation": "day-weighted mean over a 365-day year = 1",
            "envelope": max(MONTH_MULTIPLIERS),
            "seasons": "meteorological, northern hemisphere (Dec-Feb Winter, Mar-May Spring, "
            "Jun-Aug Summer, Sep-Nov Fall)",
            "category_mix_by_season": {
                s: dict(zip(_CATEGORIES, map(float, _SEASON_CATEGORY_MIX[si]), strict=True))
                for si, s in enumerate(SEASONS)
            },
        },
        "category_spend_factors": dict(zip(_CATEGORIES, map(float, _CATEGORY_FACTOR), strict=True)),
        "other": {
            "states": "drawn proportional to 2020 Census population (50 states and DC)",
            "frequency_of_purchases": (
                "stated cadence nearest (log scale) to lambda * 52.18 * lognormal noise "
                f"(sd {_FREQ_NOISE_SD}); ties between equal cadences split evenly"
            ),
            "previous_purchases": "min(50, Poisson(lambda_per_year * Uniform(0, 2 years)))",
            "p_preferred_payment": _P_PREFERRED_PAYMENT,
        },
    }


def _validate(customers: int, seed: int, start: date, end: date, chunk_customers: int) -> None:
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 1:
        raise UsageError(f"customers must be a positive integer, got {customers!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(start, date) or not isinstance(end, date):
        raise UsageError("start and end must be dates")
    if end <= start:
        raise UsageError(f"end ({end}) must be after start ({start})")
    if isinstance(chunk_customers, bool) or not isinstance(chunk_customers, int) \
            or chunk_customers < 1:
        raise UsageError(f"chunk_customers must be a positive integer, got {chunk_customers!r}")


def _chunks(customers: int, chunk_customers: int) -> Iterator[list[tuple[int, int, int]]]:
    """Yield chunks as lists of (block index, first customer id, customers in block)."""
    n_blocks = -(-customers // BLOCK_CUSTOMERS)
    per_chunk = max(1, -(-chunk_customers // BLOCK_CUSTOMERS))
    for first in range(0, n_blocks, per_chunk):
        yield [
            (bi, bi * BLOCK_CUSTOMERS + 1, min(BLOCK_CUSTOMERS, customers - bi * BLOCK_CUSTOMERS))
            for bi in range(first, min(first + per_chunk, n_blocks))
        ]


def generate(
    out: Path | str,
    customers: int,
    *,
    seed: int = 42,
    start: date = date(2023, 1, 1),
    end: date = date(2025, 12, 31),
    fmt: OutputFormat | None = None,
    chunk_customers: int = 200_000,
    progress: Callable[[int, int], None] | None = None,
    params: TrueParams | None = None,
) -> GenerationResult:
    """Write a synthetic purchase file for ``customers`` customers and its ground truth.

    Args:
        out: target file; ``.csv``, ``.csv.gz`` or ``.parquet`` (the format follows the suffix
            unless ``fmt`` is given). Parent folders are created.
        customers: number of customers (ids ``"1"`` .. ``str(customers)``).
        seed: seed of the :class:`numpy.random.SeedSequence`; same arguments give
            byte-identical files.
        start, end: first and last possible purchase date (inclusive).
        fmt: ``"csv"`` or ``"parquet"``; ``None`` infers it from the suffix.
        chunk_customers: customers simulated and written per chunk (rounded up to a multiple of
            :data:`BLOCK_CUSTOMERS`); bounds memory. CSV output does not depend on it.
        progress: called as ``progress(customers_done, customers_total)`` after each chunk.
        params: true model parameters (default :data:`DEFAULT_PARAMS`).

    Returns:
        :class:`GenerationResult` with the output path, row and customer counts, the path of
        ``<out without suffixes>.truth.json`` and the elapsed seconds.

    The data and the truth JSON are written to temporary files in the target folder and renamed
    into place only when complete.
    """
    t0 = time.perf_counter()
    _validate(customers, seed, start, end, chunk_customers)
    params = params or DEFAULT_PARAMS
    out_path = Path(out)
    out_fmt, gz = _resolve_format(out_path, fmt)
    truth_path = truth_path_for(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cal = _Calendar.build(start, end)

    tmp = _temp_path(out_path)
    sink: _Sink | None = None
    rows = 0
    done = 0
    try:
        sink = _Sink(tmp, out_fmt, gz)
        for chunk in _chunks(customers, chunk_customers):
            blocks = [
                _simulate_block(
                    np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(bi,))),
                    first_id, n, cal, params,
                )
                for bi, first_id, n in chunk
            ]
            table = _chunk_table(blocks, cal, out_fmt)
            del blocks
            sink.write(table)
            rows += table.num_rows
            done += sum(n for _, _, n in chunk)
            del table
            if progress is not None:
                progress(done, customers)
        sink.close()
        os.replace(tmp, out_path)
    except BaseException:
        if sink is not None:
            sink.abort()
        tmp.unlink(missing_ok=True)
        raise

    _write_json_atomic(
        truth_path,
        _truth_doc(out=out_path, fmt=out_fmt, gz=gz, seed=seed, start=start, end=end,
                   customers=customers, rows=rows, params=params),
    )
    return GenerationResult(
        path=out_path,
        rows=rows,
        customers=customers,
        truth_path=truth_path,
        seconds=time.perf_counter() - t0,
    )


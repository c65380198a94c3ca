"""What the loaded data supports, decided once from the marts, so that every stage runs only
the analyses the data can answer and says why it skipped the others.

A Kaggle-style snapshot (one purchase per customer, a season but no date) has no recency, no
calendar and no repeat purchases: RFM, BG/NBD, churn and cohorts cannot be computed from it, and
no proxy is presented in their place. A dated transaction log supports them when it spans
enough time and enough customers come back.

:func:`profile` measures the data (a handful of aggregate queries on the marts);
:func:`decide` turns a :class:`DataProfile` into one :class:`Capability` per analysis. The
analyze stage writes the decisions, with what actually ran, to ``analytics.analyses``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from .datastore import DataStore

#: Minimum sizes below which an analysis is not meaningful (stated in every skip reason).
MIN_CUSTOMERS_SEGMENTS = 20
MIN_CUSTOMERS_CLUSTERING = 50
MIN_REPEAT_CUSTOMERS_BTYD = 50
MIN_SPAN_DAYS_BTYD = 90
MIN_SPAN_DAYS_GROWTH = 60
MIN_SPAN_DAYS_YOY = 365 + 31
MIN_MULTI_ITEM_OCCASIONS = 30
MIN_CLASS_SIZE = 20


@dataclass(frozen=True)
class DataProfile:
    n_purchases: int
    n_customers: int
    dated: bool
    first_date: Any = None
    last_date: Any = None
    span_days: int = 0
    #: customers with at least one repeat purchase occasion (dated data only)
    n_repeat_customers: int = 0
    #: purchase occasions (customer-days) holding more than one known product
    n_multi_item_occasions: int = 0
    has_season: bool = False
    has_category: bool = False
    has_state: bool = False
    has_demographics: bool = False
    has_stated_frequency: bool = False
    has_previous_purchases: bool = False
    #: customers with and without a subscription (None when the data has no such column)
    n_subscribed: int | None = None
    n_not_subscribed: int | None = None
    #: purchase lines with a date
    n_dated: int = 0

    @property
    def all_dated(self) -> bool:
        """Every purchase line has a date (no snapshot file loaded beside a dated log)."""
        return self.n_purchases > 0 and self.n_dated == self.n_purchases

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if k.endswith("_date") and v is not None else v)
                for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Capability:
    analysis: str
    supported: bool
    reason: str


def profile(store: DataStore) -> DataProfile:
    """Measure the data in the marts (a few aggregate queries; cheap at 10M rows)."""
    fct = store.relation("marts", "fct_purchases")
    cust = store.relation("marts", "customer_features")
    p = store.query(
        f"""select count(*) as n_purchases, count(purchase_date) as n_dated,
                   min(purchase_date) as first_date, max(purchase_date) as last_date,
                   count(season) as n_season, count(state_name) as n_state,
                   count(age_band) as n_age
            from {fct}"""  # noqa: S608 - package-built relation names only
    ).iloc[0]
    c = store.query(
        f"""select count(*) as n_customers,
                   sum(case when frequency > 0 and first_purchase_date is not null
                       then 1 else 0 end) as n_repeat,
                   count(stated_purchases_per_year) as n_stated,
                   count(stated_previous_purchases) as n_previous,
                   count(gender) as n_gender, count(age) as n_age,
                   sum(case when has_subscription then 1 else 0 end) as n_sub,
                   sum(case when not has_subscription then 1 else 0 end) as n_nosub,
                   count(has_subscription) as n_sub_known
            from {cust}"""  # noqa: S608
    ).iloc[0]
    products = store.relation("marts", "dim_products")
    # dim_products names a product "Unknown" when the source has none (CDNOW): not a category
    cat = store.query(
        f"select count(*) as n from {products} where not is_unknown_product"  # noqa: S608
    ).iloc[0]
    # only a customer with more lines than purchase occasions can have an occasion of several
    # lines: looking at those customers' lines alone is the same count, about 8x faster at
    # 10M lines than grouping every line by customer and day
    multi = store.query(
        f"""select count(*) as n from (
                select f.customer_id, f.purchase_date from {fct} as f
                join {products} as p on p.product_id = f.product_id
                where f.purchase_date is not null and not p.is_unknown_product
                  and f.customer_id in (select customer_id from {cust}
                                        where n_purchases > n_purchase_occasions)
                group by f.customer_id, f.purchase_date
                having count(distinct f.product_id) > 1) as occasions"""  # noqa: S608
    ).iloc[0]
    dated = int(p["n_dated"]) > 0
    first = pd.Timestamp(p["first_date"]).date() if dated else None
    last = pd.Timestamp(p["last_date"]).date() if dated else None
    span = (last - first).days if first and last else 0
    sub_known = int(c["n_sub_known"] or 0) > 0
    return DataProfile(
        n_purchases=int(p["n_purchases"]),
        n_customers=int(c["n_customers"]),
        dated=dated,
        first_date=first,
        last_date=last,
        span_days=span,
        n_repeat_customers=int(c["n_repeat"] or 0),
        n_multi_item_occasions=int(multi["n"]),
        has_season=int(p["n_season"]) > 0,
        has_category=int(cat["n"]) > 0,
        has_state=int(p["n_state"]) > 0,
        has_demographics=int(c["n_gender"]) > 0 or int(c["n_age"]) > 0,
        has_stated_frequency=int(c["n_stated"]) > 0,
        has_previous_purchases=int(c["n_previous"]) > 0,
        n_subscribed=int(c["n_sub"] or 0) if sub_known else None,
        n_not_subscribed=int(c["n_nosub"] or 0) if sub_known else None,
        n_dated=int(p["n_dated"]),
    )


def decide(p: DataProfile) -> list[Capability]:
    """One decision per analysis, with the reason it can or cannot run on this data."""
    out: list[Capability] = []

    def add(name: str, ok: bool, yes: str, no: str) -> None:
        out.append(Capability(name, ok, yes if ok else no))

    no_dates = "the data has no purchase dates"
    add("eda", p.n_purchases > 0, f"{p.n_purchases:,} purchase lines", "no purchases loaded")
    add("rfm_segments", p.dated and p.n_customers >= MIN_CUSTOMERS_SEGMENTS,
        "dated purchases give recency, frequency and monetary value per customer",
        no_dates + " (recency does not exist)" if not p.dated
        else f"fewer than {MIN_CUSTOMERS_SEGMENTS} customers")
    add("snapshot_segments",
        not p.dated and (p.has_previous_purchases or p.has_stated_frequency)
        and p.n_customers >= MIN_CUSTOMERS_SEGMENTS,
        "one purchase per customer: segments from stated previous purchases and cadence x spend",
        "dated data uses RFM segments instead" if p.dated
        else "no stated previous purchases or purchase frequency"
        if not (p.has_previous_purchases or p.has_stated_frequency)
        else f"fewer than {MIN_CUSTOMERS_SEGMENTS} customers")
    add("clustering", p.n_customers >= MIN_CUSTOMERS_CLUSTERING,
        f"{p.n_customers:,} customers", f"fewer than {MIN_CUSTOMERS_CLUSTERING} customers")
    add("seasonal_trends", p.has_season, "purchases carry a season (or a date)",
        "no season or date on the purchases")
    add("calendar_trends", p.dated, "dated purchases: month, week and weekday series", no_dates)
    add("growth", p.dated and p.span_days >= MIN_SPAN_DAYS_GROWTH,
        f"the data spans {p.span_days} days",
        no_dates if not p.dated else f"the data spans only {p.span_days} days "
        f"(at least {MIN_SPAN_DAYS_GROWTH} needed)")
    add("cohort_retention", p.dated, "first-purchase month cohorts", no_dates)
    add("attribute_affinity", p.has_category, "category with season, payment and discount",
        "no product categories")
    add("item_pair_affinity", p.n_multi_item_occasions >= MIN_MULTI_ITEM_OCCASIONS,
        f"{p.n_multi_item_occasions:,} purchase occasions hold several items",
        no_dates + " (orders cannot be grouped)" if not p.dated
        else f"only {p.n_multi_item_occasions} occasions hold several items "
        f"(at least {MIN_MULTI_ITEM_OCCASIONS} needed)")
    add("geography", p.has_state, "purchases carry a US state", "no state on the purchases")
    btyd_ok = (p.dated and p.span_days >= MIN_SPAN_DAYS_BTYD
               and p.n_repeat_customers >= MIN_REPEAT_CUSTOMERS_BTYD)
    btyd_no = (no_dates + " (BG/NBD needs each customer's purchase times)" if not p.dated
               else f"the data spans only {p.span_days} days (at least {MIN_SPAN_DAYS_BTYD} "
               "needed for a calibration/holdout split)" if p.span_days < MIN_SPAN_DAYS_BTYD
               else f"only {p.n_repeat_customers} customers purchased more than once "
               f"(at least {MIN_REPEAT_CUSTOMERS_BTYD} needed)")
    add("clv_bgnbd_gamma_gamma", btyd_ok,
        "dated log with repeat customers: BG/NBD + Gamma-Gamma, validated on a holdout", btyd_no)
    add("churn_classifier", btyd_ok,
        "calibration-period features, holdout-period labels", btyd_no)
    add("clv_heuristic", not p.dated and p.has_stated_frequency,
        "snapshot: stated cadence per year x spend x horizon, labelled as a heuristic",
        "dated data uses BG/NBD + Gamma-Gamma instead" if p.dated
        else "no stated purchase frequency")
    sub_ok = (p.n_subscribed is not None and min(p.n_subscribed, p.n_not_subscribed or 0)
              >= MIN_CLASS_SIZE)
    add("subscription_propensity", sub_ok,
        f"{p.n_subscribed} subscribed and {p.n_not_subscribed} not",
        "no subscription status in the data" if p.n_subscribed is None
        else f"fewer than {MIN_CLASS_SIZE} customers in one class")
    return out


def supported(decisions: list[Capability], analysis: str) -> Capability:
    """The decision for one analysis (KeyError when the name is unknown)."""
    for d in decisions:
        if d.analysis == analysis:
            return d
    raise KeyError(analysis)

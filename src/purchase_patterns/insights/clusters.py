"""Behavioural clusters of customers (k-means), each described in words.

Features, one row per customer (skewed counts and amounts on a log scale, then standardised):

- dated data: purchase occasions, days since the last purchase, mean spend per occasion,
  tenure (days since the first purchase), share of lines with a discount, mean review rating;
- snapshot data: spend, stated previous purchases, stated purchases per year, discount used,
  subscriber, review rating.

Features the data does not carry (all missing or constant) are left out; a missing value is
replaced by the feature's median. The number of clusters k is chosen from
``insights.cluster_k_min``..``cluster_k_max`` by the **highest mean silhouette score**
(computed on a seeded sample of ``insights.silhouette_customers`` customers); k-means is
fitted on a seeded sample of at most ``insights.cluster_fit_customers`` customers and then
assigns every customer to the nearest centre, so memory stays bounded at any size.

A cluster is described by the features on which its mean differs most from all customers
(in standard deviations, at least half of one), in words and with both means.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .context import Context

MIN_DISTINCT_EFFECT = 0.5  # standard deviations


@dataclass(frozen=True)
class Feature:
    name: str
    label: str
    high: str
    low: str
    log: bool = False
    unit: str = ""


DATED_FEATURES = (
    Feature("occasions", "purchase occasions", "frequent", "one-off", log=True),
    Feature("recency_days", "days since last purchase", "lapsed", "recent", unit=" days"),
    Feature("avg_spend", "spend per occasion", "big-basket", "small-basket", log=True,
            unit=" USD"),
    Feature("tenure_days", "days since first purchase", "long-standing", "new", unit=" days"),
    Feature("discount_share", "share of purchases with a discount", "discount-driven",
            "full-price"),
    Feature("avg_rating", "mean review rating", "satisfied", "critical"),
)
SNAPSHOT_FEATURES = (
    Feature("spend", "spend per purchase", "big-spending", "budget", unit=" USD"),
    Feature("previous_purchases", "stated previous purchases", "long-history",
            "short-history"),
    Feature("per_year", "stated purchases per year", "frequent", "infrequent", log=True),
    Feature("discount_share", "share of purchases with a discount", "discount-driven",
            "full-price"),
    Feature("subscribed", "share subscribed", "subscribed", "unsubscribed"),
    Feature("avg_rating", "mean review rating", "satisfied", "critical"),
)


def _behaviour(ctx: Context) -> pd.DataFrame:
    """Per-customer discount share and mean rating, from one SQL aggregate."""
    fct = ctx.store.relation("marts", "fct_purchases")
    return ctx.query(
        "select customer_id, avg(case when is_discount_applied then 1.0 "  # noqa: S608
        "when not is_discount_applied then 0.0 end) as discount_share, "
        f"avg(review_rating) as avg_rating from {fct} group by 1")  # noqa: S608


def features(ctx: Context, customers: pd.DataFrame) -> tuple[pd.DataFrame, tuple[Feature, ...]]:
    """The raw (untransformed) feature frame, indexed like ``customers``."""
    beh = customers[["customer_id"]].merge(_behaviour(ctx), on="customer_id", how="left")
    beh.index = customers.index
    if ctx.profile.dated:
        raw = pd.DataFrame({
            "occasions": customers["n_purchase_occasions"],
            "recency_days": customers["days_since_last_purchase"],
            "avg_spend": customers["monetary_value"],
            "tenure_days": customers["t_days"],
            "discount_share": beh["discount_share"], "avg_rating": beh["avg_rating"]})
        specs = DATED_FEATURES
    else:
        raw = pd.DataFrame({
            "spend": customers["total_spend"],
            "previous_purchases": customers["stated_previous_purchases"],
            "per_year": customers["stated_purchases_per_year"],
            "discount_share": beh["discount_share"],
            "subscribed": customers["has_subscription"].astype("Float64"),
            "avg_rating": beh["avg_rating"]})
        specs = SNAPSHOT_FEATURES
    raw = raw.apply(pd.to_numeric, errors="coerce").astype(float)
    kept = tuple(f for f in specs if raw[f.name].notna().any() and raw[f.name].std() > 0)
    return raw[[f.name for f in kept]], kept


def _transform(raw: pd.DataFrame, specs: tuple[Feature, ...]) -> np.ndarray:
    x = raw.copy()
    for f in specs:
        col = x[f.name].fillna(x[f.name].median())
        x[f.name] = np.log1p(col.clip(lower=0)) if f.log else col
    return x.to_numpy(dtype=float)


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=size, replace=False)) if n > size else np.arange(n)


def choose_k(x: np.ndarray, ks: range, seed: int, n_silhouette: int) -> tuple[int, dict[int, float]]:
    """The k with the highest mean silhouette score (on a seeded sample)."""
    from sklearn.cluster import KMeans  # scikit-learn loads in seconds: only when clustering
    from sklearn.metrics import silhouette_score

    scores: dict[int, float] = {}
    idx = _sample(len(x), n_silhouette, seed + 1)
    for k in ks:
        if k >= len(x):
            break
        labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x).labels_
        if len(set(labels[idx])) < 2:
            continue
        scores[k] = float(silhouette_score(x[idx], labels[idx]))
    best = max(scores, key=lambda k: scores[k])
    return best, scores


def describe(raw: pd.DataFrame, z: pd.DataFrame, labels: np.ndarray,
             specs: tuple[Feature, ...]) -> list[dict[str, Any]]:
    """Label, words and profile of every cluster (largest first)."""
    overall = raw.mean()
    out = []
    sizes = pd.Series(labels).value_counts()
    for cid in sizes.index:
        mask = labels == cid
        diff = z[mask].mean()
        ranked = diff.reindex(diff.abs().sort_values(ascending=False).index)
        strong = [(name, d) for name, d in ranked.items() if abs(d) >= MIN_DISTINCT_EFFECT]
        spec = {f.name: f for f in specs}
        means = raw[mask].mean()
        words = [spec[name].high if d > 0 else spec[name].low for name, d in strong[:2]]
        label = (", ".join(words) or "typical").capitalize()
        phrases = [
            f"{'higher' if d > 0 else 'lower'} {spec[name].label} ({_num(means[name])}"
            f"{spec[name].unit} vs {_num(overall[name])}{spec[name].unit} overall)"
            for name, d in strong[:3]]
        description = ("Close to the average customer on every feature." if not phrases else
                       "Compared with all customers: " + "; ".join(phrases) + ".")
        profile = {name: {"mean": round(float(means[name]), 4),
                          "overall": round(float(overall[name]), 4),
                          "z": round(float(diff[name]), 3)} for name in raw.columns}
        out.append({"cluster_id": int(cid), "cluster_label": label, "description": description,
                    "customers": int(mask.sum()), "profile_json": json.dumps(profile)})
    seen: dict[str, int] = {}
    for row in out:  # keep labels unique
        n = seen.get(row["cluster_label"], 0) + 1
        seen[row["cluster_label"]] = n
        if n > 1:
            row["cluster_label"] = f"{row['cluster_label']} ({n})"
    return out


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}" if abs(v) < 10 else f"{v:,.1f}"


def cluster(ctx: Context, customers: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Cluster id and label per customer (indexed like ``customers``) and the ``clusters``
    table; empty when clustering is not supported."""
    empty = pd.Series(pd.NA, index=customers.index, dtype="Int64"), pd.DataFrame()
    if not ctx.gate("clustering"):
        return empty
    raw, specs = features(ctx, customers)
    if len(specs) < 2:
        ctx.record("clustering", False, "fewer than two behavioural features vary in this data")
        return empty
    from sklearn.cluster import KMeans  # see choose_k
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    cfg = ctx.cfg
    x_all = StandardScaler().fit_transform(_transform(raw, specs))
    fit_idx = _sample(len(x_all), cfg.cluster_fit_customers, ctx.seed)
    ctx.progress("analyze: choosing the number of clusters", None)
    # one native thread: on a shared machine OpenMP workers spinning for a busy core make
    # k-means an order of magnitude slower, and these fits are small
    with threadpool_limits(limits=1):
        k, scores = choose_k(x_all[fit_idx], range(cfg.cluster_k_min, cfg.cluster_k_max + 1),
                             ctx.seed, cfg.silhouette_customers)
        model = KMeans(n_clusters=k, n_init=4, random_state=ctx.seed).fit(x_all[fit_idx])
        labels = model.predict(x_all)
    z = pd.DataFrame(x_all, columns=raw.columns, index=raw.index)
    rows = describe(raw, z, labels, specs)
    table = pd.DataFrame(rows)
    table["share"] = table["customers"] / len(labels)
    criterion = (f"k = {k} of {cfg.cluster_k_min}-{cfg.cluster_k_max} by the highest mean "
                 f"silhouette ({scores[k]:.3f}; " + ", ".join(
                     f"k={kk}: {s:.3f}" for kk, s in scores.items()) + ")")
    table["silhouette"] = scores[k]
    table["k_criterion"] = criterion
    strength = ("weak" if scores[k] < 0.25 else "moderate" if scores[k] < 0.5 else "strong")
    ctx.record("clustering", True, f"{criterion}; {strength} structure; features: "
               + ", ".join(f.label for f in specs))
    return pd.Series(labels, index=customers.index).astype("Int64"), table

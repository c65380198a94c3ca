"""Affinity as lift: which attribute values go together on a purchase line, and which items
are bought together on one purchase occasion (a customer's purchase day).

For a rule A -> B over N baskets (purchase lines for attributes, occasions for items):
support = n(A and B) / N, confidence = n(A and B) / n(A), lift = confidence / (n(B) / N).
Lift 1 means independence; 1.5 means B is half again as likely with A. ``p_value`` is a
two-sided test that lift = 1 (chi-square on the 2x2 table for attributes; Fisher's exact test
for item pairs, whose counts are small). Pair counts are aggregated in SQL; rules with fewer
than ``insights.min_group_size`` lines holding A and B (item pairs: fewer than
:data:`MIN_PAIR_OCCASIONS` occasions) are left out as noise. Item baskets are the occasions
holding two or more distinct items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .context import Context

#: attribute → SQL over the purchase lines
ATTRIBUTES: dict[str, str] = {
    "season": "f.season",
    "payment": "f.payment_method",
    "discount": "case when f.is_discount_applied then 'Yes' "
                "when not f.is_discount_applied then 'No' end",
    "category": "case when not p.is_unknown_product then p.category_name end",
}
#: (antecedent attribute, consequent attribute): the product side is the consequent
PAIRS: tuple[tuple[str, str], ...] = (
    ("season", "category"), ("payment", "category"), ("discount", "category"),
    ("season", "payment"), ("season", "discount"), ("payment", "discount"),
)
#: item pairs seen on fewer occasions are left out
MIN_PAIR_OCCASIONS = 5


def _rules(counts: pd.DataFrame, n_total: int, a_counts: pd.Series, b_counts: pd.Series,
           min_n: int, test: str) -> pd.DataFrame:
    out = counts[counts["n"] >= min_n].copy()
    if out.empty:
        return out
    n_a = out["a"].map(a_counts).astype(float)
    n_b = out["b"].map(b_counts).astype(float)
    n_ab = out["n"].astype(float)
    out["support"] = n_ab / n_total
    out["confidence"] = n_ab / n_a
    out["lift"] = out["confidence"] / (n_b / n_total)
    tables = np.stack([n_ab, n_a - n_ab, n_b - n_ab, n_total - n_a - n_b + n_ab], axis=1)
    if test == "chi2":
        out["p_value"] = [stats.chi2_contingency(t.reshape(2, 2), correction=False)[1]
                          if t.min() >= 0 and (t.reshape(2, 2).sum(0) > 0).all()
                          and (t.reshape(2, 2).sum(1) > 0).all() else np.nan for t in tables]
    else:
        out["p_value"] = [stats.fisher_exact(t.reshape(2, 2).astype(int))[1] for t in tables]
    return out


def attribute_affinity(ctx: Context) -> pd.DataFrame:
    lines, params = ctx.lines()
    frames = []
    for a, b in PAIRS:
        raw = ctx.query(
            f"select {ATTRIBUTES[a]} as a, {ATTRIBUTES[b]} as b, count(*) as n, "  # noqa: S608
            f"sum(f.amount) as revenue from {lines} group by 1, 2", params)
        raw = raw[raw["a"].notna() & raw["b"].notna()]
        if raw.empty or raw["a"].nunique() < 2 or raw["b"].nunique() < 2:
            continue
        raw["a"] = f"{a}=" + raw["a"].astype(str)
        raw["b"] = f"{b}=" + raw["b"].astype(str)
        total = int(raw["n"].sum())
        rules = _rules(raw, total, raw.groupby("a")["n"].sum(), raw.groupby("b")["n"].sum(),
                       ctx.cfg.min_group_size, "chi2")
        frames.append(rules)
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    out["revenue"] = out["revenue"].astype(float)
    return out.rename(columns={"a": "antecedent", "b": "consequent"}).assign(kind="attribute")


def item_pairs(ctx: Context) -> pd.DataFrame:
    """Item pairs on the same purchase occasion, both directions of each pair. The baskets
    are the occasions holding two or more distinct items (with mostly single-item occasions,
    lift over all occasions would be far below 1 for every pair)."""
    lines, params = ctx.lines()
    baskets = (
        f"with occ as (select distinct f.customer_id, f.purchase_date, p.item_name as item "  # noqa: S608
        f"from {lines} and f.purchase_date is not null and not p.is_unknown_product), "
        "multi as (select customer_id, purchase_date from occ group by 1, 2 "
        "having count(*) > 1), "
        "basket as (select occ.customer_id, occ.purchase_date, occ.item from occ join multi "
        "on occ.customer_id = multi.customer_id and occ.purchase_date = multi.purchase_date) ")
    # one query (the baskets are built once): the pair counts, each item's basket count, and
    # the number of baskets, told apart by ``part``
    got = ctx.query(
        baskets + "select 'pair' as part, x.item as a, y.item as b, count(*) as n "  # noqa: S608
        "from basket as x join basket as y on x.customer_id = y.customer_id "
        "and x.purchase_date = y.purchase_date and x.item < y.item group by 2, 3 "
        "union all select 'item' as part, item as a, cast(null as string) as b, count(*) as n "
        "from basket group by 2 "
        "union all select 'baskets' as part, cast(null as string) as a, "
        "cast(null as string) as b, count(*) as n from multi", params)
    n_baskets = int(got.loc[got["part"] == "baskets", "n"].sum())
    items = got.loc[got["part"] == "item", ["a", "n"]].rename(columns={"a": "item"})
    pairs = got.loc[got["part"] == "pair", ["a", "b", "n"]].reset_index(drop=True)
    if pairs.empty or not n_baskets:
        return pd.DataFrame()
    both = pd.concat([pairs, pairs.rename(columns={"a": "b", "b": "a"})], ignore_index=True)
    counts = items.set_index("item")["n"]
    # pairs are rare: keep those seen on a handful of occasions rather than min_group_size
    rules = _rules(both, n_baskets, counts, counts, MIN_PAIR_OCCASIONS, "fisher")
    return rules.rename(columns={"a": "antecedent", "b": "consequent"}).assign(kind="item_pair")


def run(ctx: Context) -> pd.DataFrame:
    frames = []
    if ctx.gate("attribute_affinity"):
        attr = attribute_affinity(ctx)
        ctx.record("attribute_affinity", not attr.empty,
                   f"{len(attr)} attribute rules (category, season, payment, discount)"
                   if not attr.empty else "fewer than two values per attribute in scope")
        frames.append(attr)
    if ctx.gate("item_pair_affinity"):
        pairs = item_pairs(ctx)
        ctx.record("item_pair_affinity", not pairs.empty,
                   f"{len(pairs) // 2} item pairs seen on {MIN_PAIR_OCCASIONS}+ multi-item occasions"
                   if not pairs.empty else
                   f"no item pair seen on {MIN_PAIR_OCCASIONS} or more occasions")
        frames.append(pairs)
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

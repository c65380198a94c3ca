"""Recommendations in plain language, each tied to the figures behind it and ranked by the
value at stake.

Every candidate comes from a table the analyze stage produced (segments, trends, affinity,
tests) or from the predict stage's predictions, and carries:

- ``customers``, ``revenue_at_stake`` (revenue of the customers or purchases concerned) and
  ``clv_at_stake`` (their predicted CLV, when predictions exist);
- ``value_at_stake``, the amount used for ranking, and ``value_basis``, what it is: predicted
  CLV of the customers concerned when there are predictions; otherwise revenue **per year**
  on dated data (revenue over the data annualised, the peak months of an average year, the
  last twelve months against the year before), and revenue in the data on snapshot data
  (which has no time axis);
- ``evidence_json``: the numbers quoted in the rationale and the table they come from.

A candidate is made only when its numbers hold (a group of at least
``insights.min_group_size`` customers, a significant lift, a peak found by the stated
method); nothing is generic advice without figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .segments import SCHEME_RFM
from .trends import MONTH_NAMES, peak_periods

RFM_PLAYBOOK: dict[str, tuple[str, str]] = {
    "Champions": ("Reward and keep your Champions",
                  "Give them early access, loyalty rewards and a referral ask; do not train "
                  "them to wait for discounts."),
    "Loyal Customers": ("Grow Loyal Customers' baskets",
                        "Recommend complementary and higher-value products and invite them "
                        "into a loyalty tier."),
    "Potential Loyalists": ("Turn Potential Loyalists into regulars",
                            "Offer membership or loyalty points and personalised "
                            "recommendations after each purchase."),
    "New Customers": ("Win the second purchase of New Customers",
                      "Run an onboarding series with a time-limited second-purchase "
                      "incentive."),
    "Promising": ("Build a habit in Promising customers",
                  "Follow up with recommendations based on what they bought and a small "
                  "incentive to come back."),
    "Need Attention": ("Re-engage customers who Need Attention",
                       "Send limited-time offers based on their past purchases before they "
                       "slip further."),
    "About to Sleep": ("Wake up customers About to Sleep",
                       "Reconnect with popular products and a modest offer; ask what would "
                       "bring them back."),
    "At Risk": ("Win back At Risk customers",
                "Run a personal win-back campaign: reminders, offers tailored to what they "
                "used to buy, and a reason to return now."),
    "Can't Lose Them": ("Win back the customers you can't lose",
                        "Reach out personally with your best offer and find out why they "
                        "stopped buying."),
    "Hibernating": ("Reactivate Hibernating customers cheaply",
                    "Use low-cost channels only (email) with relevant products, and leave "
                    "non-responders out of paid campaigns."),
}
#: snapshot tiers (frequency, spend) → (title, action)
SNAPSHOT_PLAYBOOK: dict[tuple[str, str], tuple[str, str]] = {
    ("Frequent", "high spend"): ("Keep your frequent big spenders",
                                 "Treat them as VIPs: early access, free shipping and "
                                 "recognition rather than discounts."),
    ("Frequent", "mid spend"): ("Raise the basket of frequent buyers",
                                "Offer bundles and complementary items, and set free-shipping "
                                "thresholds just above their usual spend."),
    ("Frequent", "low spend"): ("Raise the basket of frequent low spenders",
                                "Offer bundles and complementary items, and set free-shipping "
                                "thresholds just above their usual spend."),
    ("Regular", "high spend"): ("Move high-spending regulars to frequent",
                                "Reward the next purchase within their usual cadence and offer "
                                "a subscription."),
    ("Regular", "mid spend"): ("Move regular buyers up to frequent",
                               "Reward the next purchase within their usual cadence."),
    ("Regular", "low spend"): ("Grow regular low spenders",
                               "Recommend complementary items at checkout; reward the next "
                               "purchase within their usual cadence."),
    ("Occasional", "high spend"): ("Bring high-spending occasional buyers back more often",
                                   "Send reminders timed to their stated cadence and offer a "
                                   "subscription."),
    ("Occasional", "mid spend"): ("Bring occasional buyers back more often",
                                  "Send reminders timed to their stated cadence."),
    ("Occasional", "low spend"): ("Keep occasional low spenders on low-cost channels",
                                  "Email only, with popular products; leave them out of paid "
                                  "campaigns."),
}


@dataclass
class Inputs:
    tables: Mapping[str, pd.DataFrame]
    #: days between the first and last date in scope (None on snapshot data)
    span_days: int | None
    predictions: dict[str, Any] | None
    alpha: float
    min_group: int
    max_n: int
    peak_prominence: float

    def annual(self, revenue: float | None) -> tuple[float, str]:
        """Revenue over the data as a yearly amount (dated data), with how it was made."""
        if revenue is None:
            return 0.0, ""
        if self.span_days is not None:
            return revenue * 365.0 / (self.span_days + 1), "per year (annualised over the data)"
        return revenue, "in the data"

    def table(self, name: str) -> pd.DataFrame:
        frame = self.tables.get(name)
        return frame if frame is not None else pd.DataFrame()


def _money(v: float | None) -> str:
    if v is None or v != v:
        return "n/a"
    return f"${v:,.0f}" if abs(v) >= 100 else f"${v:,.2f}"


def _rec(title: str, action: str, rationale: str, *, value: float, basis: str, source: str,
         evidence: dict[str, Any], segment: str | None = None, customers: int | None = None,
         revenue: float | None = None, clv: float | None = None) -> dict[str, Any]:
    return {"title": title, "action": action, "rationale": rationale, "segment": segment,
            "customers": customers, "revenue_at_stake": revenue, "clv_at_stake": clv,
            "value_at_stake": value, "value_basis": basis, "source": source,
            "evidence_json": json.dumps(evidence, default=_json_default)}


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return str(v)


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def segment_recommendations(inp: Inputs) -> list[dict[str, Any]]:
    seg = inp.table("segment_summary")
    out = []
    with_clv = "total_clv" in seg.columns and seg["total_clv"].notna().any()
    for r in seg.to_dict("records"):
        if int(r["customers"]) < inp.min_group:
            continue
        name = r["segment"]
        if r["scheme"] == SCHEME_RFM:
            title, action = RFM_PLAYBOOK[name]
            habits = (f"on average {r['avg_frequency']:.1f} purchase occasions, the last "
                      f"{r['avg_recency_days']:.0f} days ago")
        else:
            f_tier, m_tier = name.split(", ")
            title, action = SNAPSHOT_PLAYBOOK[(f_tier, m_tier)]
            habits = (f"on average {r['avg_frequency']:.1f} stated previous purchases and "
                      f"{_money(r['avg_monetary'])} per purchase")
        revenue, recent = _num(r["revenue"]), _num(r.get("revenue_last_12_months"))
        clv = _num(r.get("total_clv")) if with_clv else None
        rationale = (f"{int(r['customers']):,} customers ({r['customer_share']:.0%}) in "
                     f"{name} ({r['rule']}) brought {_money(revenue)} ({r['revenue_share']:.0%}"
                     f" of revenue)")
        rationale += f", {_money(recent)} of it in the last 12 months" if recent is not None else ""
        rationale += f"; {habits}"
        if clv is not None:
            rationale += (f"; predicted CLV {_money(_num(r.get('avg_clv')))} each, "
                          f"{_money(clv)} in all")
        rationale += "."
        if clv is not None:
            value, basis = clv, "predicted CLV of these customers"
        else:
            value, how = inp.annual(revenue)
            basis = f"their revenue {how}"  # e.g. "their revenue per year (annualised ...)"
        evidence = {k: r.get(k) for k in ("segment", "rule", "customers", "customer_share",
                                          "revenue", "revenue_share", "revenue_last_12_months",
                                          "avg_frequency", "avg_recency_days", "avg_monetary",
                                          "avg_clv", "total_clv")}
        out.append(_rec(title, action, rationale, value=value, basis=basis,
                        source="segment_summary", evidence=evidence, segment=name,
                        customers=int(r["customers"]), revenue=revenue, clv=clv))
    return out


def _month_range(months: list[int]) -> str:
    names = [MONTH_NAMES[m - 1] for m in months]
    return names[0] if len(names) == 1 else f"{names[0]}-{names[-1]}"


def peak_recommendations(inp: Inputs) -> list[dict[str, Any]]:
    tp = inp.table("trend_periods")
    if tp.empty:
        return []
    out = []
    moy = tp[tp["grain"] == "month_of_year"].sort_values("period_order")
    months = tp[tp["grain"] == "month"].copy()
    if not moy.empty and moy["is_peak"].any() and not months.empty:
        months["moy"] = pd.to_datetime(months["period_start"]).dt.month
        per_year = months.groupby("moy")["revenue"].mean()
        flags = moy["is_peak"].astype(bool).tolist()
        runs: list[list[int]] = []
        for m in range(1, 13):  # contiguous runs of peak months (Dec-Jan wraps)
            if flags[m - 1]:
                if runs and runs[-1][-1] == m - 1:
                    runs[-1].append(m)
                else:
                    runs.append([m])
        if len(runs) > 1 and runs[0][0] == 1 and runs[-1][-1] == 12:
            runs[0] = runs.pop() + runs[0]
        proms = {p["month"]: p for p in peak_periods(moy["index"].to_numpy(dtype=float),
                                                      inp.peak_prominence)}
        for run in runs:
            idx = {MONTH_NAMES[m - 1]: float(moy.iloc[m - 1]["index"]) for m in run}
            top = max(run, key=lambda m: float(moy.iloc[m - 1]["index"]))
            prom = proms.get(top, {}).get("prominence")
            value = float(sum(per_year.get(m, 0.0) for m in run))
            lift = ", ".join(f"{k} {v - 1:+.0%}" for k, v in idx.items())
            first = MONTH_NAMES[(run[0] - 2) % 12]
            stands = (f", {prom:.2f} above the surrounding months" if prom is not None else "")
            out.append(_rec(
                f"Prepare for the {_month_range(run)} peak",
                f"Have stock, staff and campaigns ready by early {MONTH_NAMES[run[0] - 1]} "
                f"(plan in {first}); put the season's best-selling categories up front.",
                f"{_month_range(run)} is a peak of the seasonal profile (seasonal index "
                f"{lift} against the centred 12-month moving average{stands}); these months "
                f"bring {_money(value)} in an average year.",
                value=value, basis="revenue of the peak months in an average year",
                source="trend_periods", revenue=value,
                evidence={"months": [MONTH_NAMES[m - 1] for m in run], "seasonal_index": idx,
                          "prominence": prom, "revenue_per_year": value}))
    elif not tp[(tp["grain"] == "season") & tp["is_peak"].astype(bool)].empty:
        for r in tp[(tp["grain"] == "season") & tp["is_peak"].astype(bool)].to_dict("records"):
            value, how = inp.annual(float(r["revenue"]))
            out.append(_rec(
                f"Prepare for {r['period']}",
                f"Plan stock and campaigns for {r['period']}, the strongest season.",
                f"{r['period']} brings {_money(r['revenue'])}, {r['index'] - 1:+.0%} against "
                f"the average season ({r['peak_method']}).",
                value=value, basis=f"revenue of the season {how}",
                source="trend_periods", revenue=float(r["revenue"]),
                evidence={"season": r["period"], "index": r["index"],
                          "revenue": r["revenue"]}))
    return out


def affinity_recommendations(inp: Inputs) -> list[dict[str, Any]]:
    aff = inp.table("affinity")
    if aff.empty:
        return []
    out = []
    n_rules = max(len(aff), 1)
    strict = inp.alpha / n_rules  # Bonferroni over the rules: lifts worth acting on only
    attr = aff[(aff["kind"] == "attribute") & aff["antecedent"].str.startswith("season=")
               & aff["consequent"].str.startswith("category=") & (aff["lift"] >= 1.2)
               & (aff["p_value"] < strict)].sort_values("revenue", ascending=False)
    for r in attr.head(3).to_dict("records"):
        season, cat = r["antecedent"].split("=", 1)[1], r["consequent"].split("=", 1)[1]
        value, how = inp.annual(float(r["revenue"]))
        out.append(_rec(
            f"Feature {cat} in {season}",
            f"Give {cat} the prominent placement and stock depth in {season}; cross-promote "
            f"it to {season} buyers.",
            f"{season} purchases are {cat} {r['lift'] - 1:.0%} more often than average (lift "
            f"{r['lift']:.2f}, {int(r['n']):,} purchases, {_money(r['revenue'])}, p = "
            f"{r['p_value']:.2g}).",
            value=value, basis=f"revenue of {cat} in {season} {how}",
            source="affinity", revenue=float(r["revenue"]),
            evidence={k: r[k] for k in ("antecedent", "consequent", "lift", "confidence",
                                        "support", "n", "revenue", "p_value")}))
    pairs = aff[(aff["kind"] == "item_pair") & (aff["lift"] >= 1.5)
                & (aff["p_value"] < inp.alpha)].sort_values("n", ascending=False)
    cols = inp.table("eda_columns")
    mean_line = (float(cols.loc[cols["column_name"] == "amount", "mean"].iloc[0])
                 if not cols.empty and (cols["column_name"] == "amount").any() else 0.0)
    seen: set[frozenset[str]] = set()
    for r in pairs.to_dict("records"):
        key = frozenset((r["antecedent"], r["consequent"]))
        if key in seen or len(seen) >= 2:
            continue
        seen.add(key)
        joint = 2 * int(r["n"]) * mean_line
        value, how = inp.annual(joint)
        out.append(_rec(
            f"Bundle {r['antecedent']} with {r['consequent']}",
            f"Show {r['consequent']} next to {r['antecedent']} (and vice versa) and try a "
            "bundle price.",
            f"They are bought together on {int(r['n'])} multi-item occasions, {r['lift']:.1f}x "
            f"as often as chance (p = {r['p_value']:.2g}).",
            value=value, basis=f"estimated revenue of the joint purchases {how} (mean line "
            "amount)", source="affinity", revenue=joint,
            evidence={k: r[k] for k in ("antecedent", "consequent", "lift", "n", "p_value")}))
    return out


def discount_recommendation(inp: Inputs) -> list[dict[str, Any]]:
    tests, cols = inp.table("eda_tests"), inp.table("eda_columns")
    if tests.empty or cols.empty:
        return []
    row = tests[tests["group_by"] == "discount"]
    amount = cols[cols["column_name"] == "amount"]
    if row.empty or amount.empty:
        return []
    r = row.iloc[0]
    groups = {g["group"]: g for g in json.loads(r["groups_json"])}
    if "Yes" not in groups or "No" not in groups:
        return []
    scale = float(amount["n"].iloc[0]) / float(r["n"])
    revenue = groups["Yes"]["n"] * groups["Yes"]["mean"] * scale
    yes, no = groups["Yes"]["mean"], groups["No"]["mean"]
    if r["significant"] and yes > no:
        title = "Keep discounts where they lift basket size"
        action = ("Discounted purchases are larger: keep discounts, but measure whether they "
                  "bring extra purchases or only move purchases that would happen anyway.")
    else:
        title = "Review discounts that do not raise spend"
        action = ("Discounts do not come with larger purchases: test them against a hold-out "
                  "group before the next campaign and cut those that do not add sales.")
    rationale = (f"{_money(revenue)} of revenue came with a discount; mean spend "
                 f"{_money(yes)} with vs {_money(no)} without ({r['test']}, adjusted p = "
                 f"{r['p_adjusted']:.2g}, effect {r['effect_magnitude']}).")
    value, how = inp.annual(revenue)
    return [_rec(title, action, rationale, value=value, source="eda_tests",
                 basis=f"revenue of purchases with a discount {how}", revenue=revenue,
                 evidence={"mean_with": yes, "mean_without": no, "p_adjusted": r["p_adjusted"],
                           "effect_size": r["effect_size"], "sample": r.get("sample")})]


def churn_recommendation(inp: Inputs) -> list[dict[str, Any]]:
    p = inp.predictions
    if not p or not p.get("n_high_churn"):
        return []
    n, clv = int(p["n_high_churn"]), float(p.get("clv_high_churn") or 0.0)
    return [_rec(
        "Retain the customers most likely to churn",
        "Put them first in retention campaigns, starting with the highest CLV.",
        f"{n:,} customers have a churn probability of {p['high_churn_threshold']:.0%} or more; "
        f"their predicted CLV is {_money(clv)} (predict stage, {p.get('clv_method')}).",
        value=clv, basis="predicted CLV of these customers", source="customer_predictions",
        customers=n, clv=clv, evidence={k: p.get(k) for k in (
            "n_high_churn", "clv_high_churn", "high_churn_threshold", "clv_method",
            "horizon_months")})]


def growth_recommendation(inp: Inputs) -> list[dict[str, Any]]:
    from .trends import growth_summary

    tp = inp.table("trend_periods")
    months = tp[tp["grain"] == "month"] if not tp.empty else tp
    g = growth_summary(months) if not months.empty else None
    if not g or g["method"] != "year_over_year" or g.get("growth") is None \
            or g["growth"] > -0.10:
        return []
    gap = g["revenue_year_before"] - g["revenue"]
    return [_rec(
        "Stop the revenue decline",
        "Find where the drop comes from (fewer new customers or fewer repeat purchases) and "
        "fund acquisition or retention accordingly.",
        f"Revenue fell {-g['growth']:.0%}: {_money(g['revenue'])} in {g['from']} to {g['to']} "
        f"against {_money(g['revenue_year_before'])} in the same months a year earlier.",
        value=gap, basis="revenue lost against the same months a year earlier",
        source="trend_periods", revenue=gap, evidence=g)]


def recommend(inp: Inputs) -> pd.DataFrame:
    """All candidates, ranked by value at stake (largest first), at most ``max_n``."""
    recs = (segment_recommendations(inp) + peak_recommendations(inp)
            + affinity_recommendations(inp) + discount_recommendation(inp)
            + churn_recommendation(inp) + growth_recommendation(inp))
    if not recs:
        return pd.DataFrame()
    out = pd.DataFrame(recs).sort_values("value_at_stake", ascending=False)
    out = out.head(inp.max_n).reset_index(drop=True)
    out.insert(0, "rank", range(1, len(out) + 1))
    return out

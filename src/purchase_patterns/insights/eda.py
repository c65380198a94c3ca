"""Exploratory data analysis: per-column summaries and distributions, associations between
columns, and significance tests for the differences a business asks about.

- **Column summaries** come from SQL aggregates: one ``group by value`` frequency table per
  column (bounded by the number of distinct values, not by the rows), from which pandas
  takes counts, mean, standard deviation, exact quantiles, Tukey outliers (outside
  ``[p25 - 1.5 IQR, p75 + 1.5 IQR]``), top values and histogram bins. Purchase-line columns
  are summarised over purchase lines, customer attributes over customers.
- **Associations** (Cramér's V, bias-corrected, between categorical columns; Pearson and
  Spearman correlations between numeric ones) and **tests** run on the purchase lines in
  scope, or, above ``insights.sample_lines`` lines, on a seeded pseudo-random sample of them
  (see :func:`sample_lines`); the output says which.
- **Tests**: spend per purchase by a grouping (Kruskal-Wallis with epsilon-squared for more
  than two groups; Mann-Whitney U with the rank-biserial correlation for two), and category
  mix by a grouping (chi-square test of independence with Cramér's V). Groups smaller than
  ``insights.min_group_size`` lines are left out. P-values are adjusted for multiple testing
  with the Benjamini-Hochberg procedure over all tests of the run; ``significant`` means
  adjusted p < ``insights.alpha``. Effect sizes are labelled with Cohen's conventions, so a
  significant but negligible difference is reported as such.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .context import Context

#: Multiplier and modulus of the portable sampling hash (a prime modulus: the map
#: line -> (A * line + seed) mod M is a bijection on residues, so the sample is spread evenly).
HASH_A = 2654435761
HASH_M = 1000003
HIST_BINS = 30
TOP_CATEGORIES = 15


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    #: SQL over the aliases of ``filters.purchase_lines`` (line grain) or ``cf`` (customers)
    expr: str
    kind: str  # numeric | categorical | boolean
    grain: str  # purchase | customer
    label: str


COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("amount", "f.amount", "numeric", "purchase", "Purchase amount (USD)"),
    ColumnSpec("quantity", "f.quantity", "numeric", "purchase", "Units per purchase line"),
    ColumnSpec("review_rating", "f.review_rating", "numeric", "purchase", "Review rating (1-5)"),
    ColumnSpec("season", "f.season", "categorical", "purchase", "Season"),
    ColumnSpec("category", "nullif(p.category_name, 'Unknown')", "categorical", "purchase",
               "Product category"),
    ColumnSpec("item", "nullif(p.item_name, 'Unknown')", "categorical", "purchase", "Item"),
    ColumnSpec("size", "f.size", "categorical", "purchase", "Size"),
    ColumnSpec("color", "f.color", "categorical", "purchase", "Colour"),
    ColumnSpec("payment_method", "f.payment_method", "categorical", "purchase", "Payment method"),
    ColumnSpec("shipping_type", "f.shipping_type", "categorical", "purchase", "Shipping type"),
    ColumnSpec("discount_applied", "f.is_discount_applied", "boolean", "purchase",
               "Discount applied"),
    ColumnSpec("promo_code_used", "f.is_promo_code_used", "boolean", "purchase",
               "Promo code used"),
    ColumnSpec("age", "cf.age", "numeric", "customer", "Age (years)"),
    ColumnSpec("gender", "cf.gender", "categorical", "customer", "Gender"),
    ColumnSpec("state", "cf.state_name", "categorical", "customer", "US state"),
    ColumnSpec("census_region", "cf.census_region", "categorical", "customer", "Census region"),
    ColumnSpec("subscription", "cf.has_subscription", "boolean", "customer", "Subscriber"),
    ColumnSpec("previous_purchases", "cf.stated_previous_purchases", "numeric", "customer",
               "Previous purchases (stated)"),
    ColumnSpec("stated_frequency", "cf.stated_purchase_frequency", "categorical", "customer",
               "Purchase frequency (stated)"),
    ColumnSpec("preferred_payment_method", "cf.preferred_payment_method", "categorical",
               "customer", "Preferred payment method"),
    ColumnSpec("purchases_per_customer", "cf.n_purchases", "numeric", "customer",
               "Purchase lines per customer"),
    ColumnSpec("purchase_occasions", "case when cf.first_purchase_date is not null "
               "then cf.n_purchase_occasions end", "numeric", "customer",
               "Purchase occasions (days) per customer"),
    ColumnSpec("spend_per_customer", "cf.total_spend", "numeric", "customer",
               "Total spend per customer (USD)"),
    ColumnSpec("days_since_last_purchase", "cf.days_since_last_purchase", "numeric", "customer",
               "Days since last purchase"),
)

#: Columns of the line-level frame used for associations and tests: name → (SQL, kind).
SAMPLE_COLUMNS: dict[str, tuple[str, str]] = {
    "amount": ("f.amount", "numeric"),
    "quantity": ("f.quantity", "numeric"),
    "review_rating": ("f.review_rating", "numeric"),
    "age": ("c.age", "numeric"),
    "previous_purchases": ("c.stated_previous_purchases", "numeric"),
    "season": ("f.season", "categorical"),
    "category": ("nullif(p.category_name, 'Unknown')", "categorical"),
    "size": ("f.size", "categorical"),
    "payment_method": ("f.payment_method", "categorical"),
    "shipping_type": ("f.shipping_type", "categorical"),
    "discount": ("f.is_discount_applied", "categorical"),
    "promo_code": ("f.is_promo_code_used", "categorical"),
    "gender": ("c.gender", "categorical"),
    "age_band": ("nullif(c.age_band, 'Unknown')", "categorical"),
    "census_region": ("c.census_region", "categorical"),
    "subscription": ("c.has_subscription", "categorical"),
    "weekday": ("f.purchase_day_of_week", "categorical"),
}
WEEKDAYS = {1: "Monday", 2: "Tuesday", 3: "Wednesday", 4: "Thursday", 5: "Friday",
            6: "Saturday", 7: "Sunday"}

#: Spend questions: grouping column → question.
SPEND_QUESTIONS: dict[str, str] = {
    "season": "Does spend per purchase differ by season?",
    "category": "Does spend per purchase differ by product category?",
    "gender": "Does spend per purchase differ by gender?",
    "age_band": "Does spend per purchase differ by age band?",
    "subscription": "Do subscribers spend differently per purchase?",
    "discount": "Is spend per purchase different when a discount is applied?",
    "census_region": "Does spend per purchase differ by Census region?",
    "weekday": "Does spend per purchase differ by day of week?",
}
#: Mix questions: (column, grouping) → question.
MIX_QUESTIONS: dict[tuple[str, str], str] = {
    ("category", "season"): "Do product categories sell differently by season?",
    ("category", "gender"): "Do men and women buy different categories?",
    ("category", "age_band"): "Do age bands buy different categories?",
    ("payment_method", "age_band"): "Do age bands pay differently?",
}


# -- column summaries -----------------------------------------------------------------------


def _customers_in_scope(ctx: Context) -> tuple[str, dict[str, Any]]:
    cf = ctx.store.relation("marts", "customer_features")
    if not ctx.filters:
        return f"{cf} as cf", {}
    lines, params = ctx.lines()
    return f"{cf} as cf where cf.customer_id in (select f.customer_id from {lines})", params  # noqa: S608


def frequency_table(ctx: Context, spec: ColumnSpec) -> pd.DataFrame:
    """``value, n`` for one column (NULL as a missing value), from one SQL aggregate."""
    source, params = ctx.lines() if spec.grain == "purchase" else _customers_in_scope(ctx)
    return ctx.query(f"select {spec.expr} as value, count(*) as n from {source} group by 1",  # noqa: S608
                     params)


def weighted_quantiles(values: np.ndarray, counts: np.ndarray, qs: list[float]) -> list[float]:
    """Quantiles (linear interpolation, as ``numpy.quantile``) of ``values`` repeated
    ``counts`` times, without expanding them. ``values`` must be sorted."""
    cum = np.cumsum(counts)
    total = int(cum[-1])
    out = []
    for q in qs:
        h = (total - 1) * q
        lo, hi = math.floor(h), math.ceil(h)
        v_lo = values[np.searchsorted(cum, lo + 1)]
        v_hi = values[np.searchsorted(cum, hi + 1)]
        out.append(float(v_lo + (h - lo) * (v_hi - v_lo)))
    return out


def _bool_label(v: Any) -> Any:
    return ("Yes" if v else "No") if isinstance(v, (bool, np.bool_)) else v


def summarise_column(spec: ColumnSpec, freq: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    """One ``eda_columns`` row and the ``eda_distributions`` rows of a frequency table."""
    freq = freq.copy()
    missing = int(freq.loc[freq["value"].isna(), "n"].sum())
    known = freq[freq["value"].notna()]
    n = int(known["n"].sum())
    row: dict[str, Any] = {"column_name": spec.name, "kind": spec.kind, "grain": spec.grain,
                           "label": spec.label, "n": n, "n_missing": missing,
                           "n_distinct": len(known)}
    ranked = known.sort_values(["n", "value"], ascending=[False, True], key=None).head(5)
    row["top_values"] = json.dumps([
        {"value": _bool_label(v.item() if hasattr(v, "item") else v), "n": int(c),
         "share": round(int(c) / n, 4)} for v, c in zip(ranked["value"], ranked["n"], strict=True)
    ], default=str)
    bins = pd.DataFrame()
    if spec.kind == "numeric" and n:
        known = known.assign(value=known["value"].astype(float)).sort_values("value")
        values, counts = known["value"].to_numpy(), known["n"].to_numpy(dtype=float)
        mean = float(np.average(values, weights=counts))
        var = float(np.sum(counts * (values - mean) ** 2) / (n - 1)) if n > 1 else math.nan
        p25, med, p75, p995 = weighted_quantiles(values, counts, [0.25, 0.5, 0.75, 0.995])
        iqr = p75 - p25
        lo_fence, hi_fence = p25 - 1.5 * iqr, p75 + 1.5 * iqr
        outliers = int(counts[(values < lo_fence) | (values > hi_fence)].sum())
        row.update(mean=mean, std=math.sqrt(var) if var == var else None, min=float(values[0]),
                   p25=p25, median=med, p75=p75, max=float(values[-1]), n_outliers=outliers,
                   outlier_rule=f"outside [{lo_fence:,.4g}, {hi_fence:,.4g}] (1.5 x IQR)")
        bins = _numeric_bins(values, counts, p75 + 3 * iqr, p995)
    elif n:
        bins = _categorical_bins(known)
    if not bins.empty:
        bins.insert(0, "column_name", spec.name)
        bins.insert(1, "grain", spec.grain)
    return row, bins


def _numeric_bins(values: np.ndarray, counts: np.ndarray, far: float, p995: float) -> pd.DataFrame:
    integer = bool(np.all(np.equal(np.mod(values, 1), 0)))
    if integer and len(values) <= HIST_BINS:
        return pd.DataFrame({"bin_order": range(len(values)), "label": [f"{v:g}" for v in values],
                             "bin_lower": values, "bin_upper": values, "n": counts})
    top = float(values[-1])
    tail = top > far and p995 < top  # a long right tail: the last bin holds the rest
    hi = p995 if tail else top
    edges = np.linspace(float(values[0]), hi, HIST_BINS + 1)
    if edges[-1] <= edges[0]:
        edges = np.array([edges[0], edges[0] + 1.0])
    hist, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges, weights=counts)
    labels = [f"{a:,.4g}-{b:,.4g}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    uppers = edges[1:].copy()
    if tail:
        labels[-1] = f">= {edges[-2]:,.4g}"
        uppers[-1] = top
    return pd.DataFrame({"bin_order": range(len(hist)), "label": labels, "bin_lower": edges[:-1],
                         "bin_upper": uppers, "n": hist})


def _categorical_bins(known: pd.DataFrame) -> pd.DataFrame:
    ranked = known.sort_values("n", ascending=False)
    head = ranked.head(TOP_CATEGORIES)
    labels = [str(_bool_label(v)) for v in head["value"]]
    counts = head["n"].tolist()
    rest = ranked.iloc[TOP_CATEGORIES:]
    if len(rest):
        labels.append(f"Other ({len(rest)} values)")
        counts.append(int(rest["n"].sum()))
    return pd.DataFrame({"bin_order": range(len(labels)), "label": labels, "n": counts})


def column_summaries(ctx: Context) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``eda_columns`` and ``eda_distributions`` for every column that holds values."""
    rows, dists = [], []
    for spec in COLUMNS:
        ctx.progress(f"analyze: summarising {spec.name}", None)
        row, bins = summarise_column(spec, frequency_table(ctx, spec))
        if row["n"] == 0:
            continue  # the source does not carry this column
        rows.append(row)
        if not bins.empty and row["n_distinct"] > 1:
            dists.append(bins)
    return pd.DataFrame(rows), (pd.concat(dists, ignore_index=True) if dists else pd.DataFrame())


# -- the line-level frame for associations and tests ----------------------------------------


@dataclass
class LineSample:
    frame: pd.DataFrame
    n_in_scope: int
    sampled: bool

    @property
    def note(self) -> str:
        if not self.sampled:
            return f"all {self.n_in_scope:,} purchase lines"
        return (f"a seeded sample of {len(self.frame):,} of {self.n_in_scope:,} purchase lines "
                f"(line L kept when ({HASH_A} * L + seed) mod {HASH_M} falls below a threshold)")


def sample_lines(ctx: Context) -> LineSample:
    """The purchase lines in scope with the columns the tests use: all of them up to
    ``insights.sample_lines``, else a seeded pseudo-random sample of about that size, drawn
    in SQL with a portable hash of the source line number."""
    lines, params = ctx.lines()
    n = int(ctx.query(f"select count(*) as n from {lines}", params)["n"].iloc[0])  # noqa: S608
    cols = ", ".join(f"{sql} as {name}" for name, (sql, _) in SAMPLE_COLUMNS.items())
    sql = f"select {cols} from {lines}"  # noqa: S608
    sampled = n > ctx.cfg.sample_lines
    if sampled:
        params = {**params, "sample_seed": ctx.seed % HASH_M,
                  "sample_k": math.ceil(ctx.cfg.sample_lines / n * HASH_M)}
        sql += (f" and mod(f.source_line * {HASH_A} + @sample_seed, {HASH_M}) < @sample_k")
    frame = ctx.query(sql, params)
    frame["amount"] = frame["amount"].astype(float)
    frame["weekday"] = frame["weekday"].map(WEEKDAYS)
    for col in ("discount", "promo_code", "subscription"):
        frame[col] = frame[col].map({True: "Yes", False: "No"})
    return LineSample(frame, n, sampled)


def _usable(frame: pd.DataFrame, col: str, min_size: int = 1) -> pd.Series:
    s = frame[col].dropna()
    counts = s.value_counts()
    return s[s.isin(counts[counts >= min_size].index)]


def cramers_v(table: np.ndarray) -> float:
    """Bias-corrected Cramér's V (Bergsma 2013) of a contingency table."""
    n = table.sum()
    r, k = table.shape
    if n <= 1 or min(r, k) < 2:
        return math.nan
    chi2 = stats.chi2_contingency(table, correction=False)[0]
    phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
    r_c = r - (r - 1) ** 2 / (n - 1)
    k_c = k - (k - 1) ** 2 / (n - 1)
    denom = min(k_c - 1, r_c - 1)
    return float(math.sqrt(phi2 / denom)) if denom > 0 else math.nan


def associations(sample: LineSample) -> pd.DataFrame:
    """Cramér's V between every pair of categorical columns, Pearson and Spearman between
    every pair of numeric columns (pairwise complete lines)."""
    df = sample.frame
    cats = [c for c, (_, kind) in SAMPLE_COLUMNS.items()
            if kind == "categorical" and df[c].nunique() > 1]
    nums = [c for c, (_, kind) in SAMPLE_COLUMNS.items()
            if kind == "numeric" and df[c].astype(float).std() > 0]
    rows = []
    for i, a in enumerate(cats):
        for b in cats[i + 1:]:
            pair = df[[a, b]].dropna()
            table = pd.crosstab(pair[a], pair[b]).to_numpy()
            rows.append({"kind": "cramers_v", "column_a": a, "column_b": b,
                         "value": cramers_v(table), "n": len(pair)})
    for i, a in enumerate(nums):
        for b in nums[i + 1:]:
            pair = df[[a, b]].dropna().astype(float)
            if len(pair) < 3 or pair[a].std() == 0 or pair[b].std() == 0:
                continue
            for kind in ("pearson", "spearman"):
                rows.append({"kind": kind, "column_a": a, "column_b": b,
                             "value": float(pair[a].corr(pair[b], method=kind)), "n": len(pair)})
    return pd.DataFrame(rows)


# -- significance tests -----------------------------------------------------------------------


def _magnitude(measure: str, value: float, df_star: int = 1) -> str:
    v = abs(value)
    if measure == "epsilon_squared":
        cuts = (0.01, 0.06, 0.14)
    elif measure == "rank_biserial":
        cuts = (0.1, 0.3, 0.5)
    else:  # Cramér's V: Cohen's w thresholds scaled by the table's smaller dimension
        cuts = tuple(c / math.sqrt(max(df_star, 1)) for c in (0.1, 0.3, 0.5))
    return ("negligible" if v < cuts[0] else "small" if v < cuts[1]
            else "medium" if v < cuts[2] else "large")


def _spend_test(df: pd.DataFrame, by: str, question: str, min_size: int) -> dict[str, Any] | None:
    col = _usable(df, by, min_size)
    if col.nunique() < 2:
        return None
    groups = {g: df.loc[col.index[col == g], "amount"].to_numpy() for g in sorted(col.unique())}
    n = sum(len(v) for v in groups.values())
    summary = [{"group": str(g), "n": len(v), "mean": round(float(v.mean()), 2),
                "median": round(float(np.median(v)), 2)} for g, v in groups.items()]
    if len(groups) == 2:
        (ga, a), (gb, b) = groups.items()
        res = stats.mannwhitneyu(a, b, alternative="two-sided")
        effect = 2 * float(res.statistic) / (len(a) * len(b)) - 1
        test, measure, stat = "Mann-Whitney U", "rank_biserial", float(res.statistic)
    else:
        res = stats.kruskal(*groups.values())
        stat = float(res.statistic)
        effect = stat / (n - 1)
        test, measure = "Kruskal-Wallis H", "epsilon_squared"
    return {"question": question, "test": test, "statistic": stat,
            "p_value": float(res.pvalue), "effect_size": effect, "effect_measure": measure,
            "variable": "amount", "group_by": by, "n": n,
            "effect_magnitude": _magnitude(measure, effect),
            "groups_json": json.dumps(summary)}


def _mix_test(df: pd.DataFrame, col: str, by: str, question: str,
              min_size: int) -> dict[str, Any] | None:
    a, b = _usable(df, col, min_size), _usable(df, by, min_size)
    idx = a.index.intersection(b.index)
    if a.nunique() < 2 or b.nunique() < 2 or not len(idx):
        return None
    table = pd.crosstab(a.loc[idx], b.loc[idx])
    chi2, p, dof, expected = stats.chi2_contingency(table.to_numpy(), correction=False)
    resid = (table - expected) / np.sqrt(expected)
    cells = resid.stack().sort_values(key=np.abs, ascending=False).head(4)
    summary = [{"row": str(r), "column": str(c), "observed": int(table.loc[r, c]),
                "expected": round(float(expected[table.index.get_loc(r),
                                                 table.columns.get_loc(c)]), 1),
                "residual": round(float(v), 2)} for (r, c), v in cells.items()]
    v = cramers_v(table.to_numpy())
    return {"question": question, "test": "chi-square test of independence",
            "statistic": float(chi2), "p_value": float(p), "effect_size": v,
            "effect_measure": "cramers_v", "variable": col, "group_by": by, "n": len(idx),
            "effect_magnitude": _magnitude("cramers_v", v, min(table.shape) - 1),
            "groups_json": json.dumps(summary)}


_LABELS = {"season": "season", "category": "category", "gender": "gender",
           "age_band": "age band", "subscription": "subscription", "discount": "discount",
           "census_region": "region", "weekday": "day of week", "payment_method":
           "payment method"}
_MEASURE_SYMBOL = {"epsilon_squared": "ε²", "rank_biserial": "r", "cramers_v": "V"}


def _p(p: float) -> str:
    return "adjusted p < 0.001" if p < 0.001 else f"adjusted p = {p:.3f}"


def _finding(row: dict[str, Any], alpha: float) -> str:
    groups = json.loads(row["groups_json"])
    sym = _MEASURE_SYMBOL[row["effect_measure"]]
    p = _p(row["p_adjusted"])
    by = _LABELS.get(row["group_by"], row["group_by"])
    if row["variable"] == "amount":
        means = ", ".join(f"{g['group']} ${g['mean']:,.2f}" for g in
                          sorted(groups, key=lambda g: -g["mean"]))
        if not row["significant"]:
            return f"No evidence that spend per purchase differs by {by} ({p}); means: {means}."
        return (f"Spend per purchase differs by {by} ({p}); the effect is "
                f"{row['effect_magnitude']} ({sym} = {row['effect_size']:.3f}); means: {means}.")
    what = _LABELS.get(row["variable"], row["variable"])
    if not row["significant"]:
        return f"No evidence that the {what} mix differs by {by} ({p})."
    cells = "; ".join(f"{c['row']} in {c['column']}: {c['observed']:,} vs {c['expected']:,.0f} "
                      "expected" for c in groups[:3])
    return (f"The {what} mix differs by {by} ({p}); the association is "
            f"{row['effect_magnitude']} ({sym} = {row['effect_size']:.3f}). Largest departures: "
            f"{cells}.")


def significance_tests(ctx: Context, sample: LineSample) -> pd.DataFrame:
    """Every question the data can answer, with Benjamini-Hochberg adjusted p-values."""
    df, min_size = sample.frame, ctx.cfg.min_group_size
    rows = [r for by, q in SPEND_QUESTIONS.items()
            if (r := _spend_test(df, by, q, min_size)) is not None]
    rows += [r for (col, by), q in MIX_QUESTIONS.items()
             if (r := _mix_test(df, col, by, q, min_size)) is not None]
    if not rows:
        return pd.DataFrame()
    out = pd.DataFrame(rows)
    out["p_adjusted"] = stats.false_discovery_control(out["p_value"].clip(lower=0), method="bh")
    out["significant"] = out["p_adjusted"] < ctx.cfg.alpha
    out["sample"] = sample.note
    out["finding"] = [_finding(r, ctx.cfg.alpha) for r in out.to_dict("records")]
    return out


def run(ctx: Context) -> dict[str, pd.DataFrame]:
    """The EDA tables for the purchases in scope (empty when EDA is not supported)."""
    if not ctx.gate("eda"):
        return {}
    columns, dists = column_summaries(ctx)
    ctx.record("eda", True, f"{len(columns)} columns summarised from SQL aggregates")
    ctx.progress("analyze: associations and tests", None)
    sample = sample_lines(ctx)
    if len(sample.frame) < 2 * ctx.cfg.min_group_size:
        reason = f"only {len(sample.frame)} purchase lines in scope"
        ctx.record("associations", False, reason)
        ctx.record("significance_tests", False, reason)
        return {"eda_columns": columns, "eda_distributions": dists}
    assoc = associations(sample)
    ctx.record("associations", True, f"{len(assoc)} pairs on {sample.note}")
    tests = significance_tests(ctx, sample)
    ctx.record("significance_tests", not tests.empty,
               f"{len(tests)} questions on {sample.note}; Benjamini-Hochberg adjusted"
               if not tests.empty else "no grouping column with two groups of "
               f"{ctx.cfg.min_group_size}+ lines")
    return {"eda_columns": columns, "eda_distributions": dists, "eda_associations": assoc,
            "eda_tests": tests}

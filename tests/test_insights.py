"""The analyze stage on real data: the Kaggle snapshot, the CDNOW log and synthetic data
whose seasonality is known. Expected values are computed independently from the source files
with pandas/scipy wherever the rule allows it."""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pandas as pd
import pytest
from helpers import FULL_STAGES, query, read_cdnow, scalar
from scipy import stats

from purchase_patterns.datastore import store
from purchase_patterns.insights import recommend, segments
from purchase_patterns.insights.stage import analyze, new_context
from purchase_patterns.insights.tables import SCHEMAS
from purchase_patterns.report.build import build_report
from purchase_patterns.settings import load_settings

BUILT = FULL_STAGES


def table(home, name: str) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(f"select * from analytics.{name}").df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def kaggle(built_home):
    return built_home("kaggle", BUILT)


@pytest.fixture(scope="module")
def cdnow(built_home):
    return built_home("cdnow_master", BUILT)


@pytest.fixture(scope="module")
def synthetic(built_home):
    return built_home("synthetic", BUILT)


def _analyses(home) -> dict[str, dict]:
    return {r["analysis"]: r for r in table(home, "analyses").to_dict("records")}


# -- every dataset --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["kaggle", "cdnow", "synthetic"])
def test_tables_follow_the_contract(name, request):
    home = request.getfixturevalue(name)
    db = home / "warehouse.duckdb"
    run_ids = set()
    for t, schema in SCHEMAS.items():
        cols = [r[0] for r in query(db, "select column_name from information_schema.columns "
                                        "where table_schema = 'analytics' and table_name = ? "
                                        "order by ordinal_position", [t])]
        assert cols == [*schema, "run_id"], t
        run_ids |= {r[0] for r in query(db, f"select distinct run_id from analytics.{t}")}
    assert len(run_ids) == 1
    a = table(home, "analyses")
    assert set(a["status"]) <= {"ran", "skipped"} and a["reason"].str.len().min() > 5
    assert a["analysis"].is_unique


# -- Kaggle snapshot --------------------------------------------------------------------------


def test_kaggle_runs_only_what_a_snapshot_supports(kaggle):
    a = _analyses(kaggle)
    for name in ("rfm_segments", "calendar_trends", "growth", "item_pair_affinity",
                 "clv_bgnbd_gamma_gamma", "churn_classifier", "cohort_retention"):
        assert a[name]["status"] == "skipped", name
        assert "no purchase dates" in a[name]["reason"], name
    for name in ("eda", "snapshot_segments", "clustering", "seasonal_trends",
                 "attribute_affinity", "preferences", "significance_tests", "recommendations"):
        assert a[name]["status"] == "ran", (name, a[name]["reason"])
    assert a["clv_heuristic"]["stage"] == "predict"
    assert a["clv_heuristic"]["status"] == "ran"  # the predict stage ran before analyze
    # no recency anywhere: not as a score, a value, a column summary or a trend
    seg = table(kaggle, "customer_segments")
    assert seg["r_score"].isna().all() and seg["recency_days"].isna().all()
    assert set(seg["scheme"]) == {"snapshot_frequency_monetary"}
    assert "days_since_last_purchase" not in set(table(kaggle, "eda_columns")["column_name"])
    assert set(table(kaggle, "trend_periods")["grain"]) == {"season"}


def test_kaggle_column_summaries_are_exact(kaggle, kaggle_csv):
    raw = pd.read_csv(kaggle_csv)
    cols = table(kaggle, "eda_columns").set_index("column_name")
    amount = raw["Purchase Amount (USD)"]
    a = cols.loc["amount"]
    assert (a["n"], a["n_missing"], a["n_distinct"]) == (3900, 0, amount.nunique())
    for ours, theirs in [("mean", amount.mean()), ("std", amount.std()),
                         ("p25", amount.quantile(0.25)), ("median", amount.median()),
                         ("p75", amount.quantile(0.75)), ("min", amount.min()),
                         ("max", amount.max())]:
        assert a[ours] == pytest.approx(theirs), ours
    age = raw["Age"]
    q1, q3 = age.quantile([0.25, 0.75])
    fence = ((age < q1 - 1.5 * (q3 - q1)) | (age > q3 + 1.5 * (q3 - q1))).sum()
    assert cols.loc["age", "n_outliers"] == fence
    top = json.loads(cols.loc["payment_method", "top_values"])
    counts = raw["Payment Method"].value_counts()
    assert top[0] == {"value": counts.index[0], "n": int(counts.iloc[0]),
                      "share": round(counts.iloc[0] / 3900, 4)}
    dist = table(kaggle, "eda_distributions")
    assert dist.loc[dist["column_name"] == "amount", "n"].sum() == 3900
    assert dist.loc[dist["column_name"] == "season", "n"].sum() == 3900


def test_kaggle_significance_tests_match_scipy(kaggle, kaggle_csv):
    raw = pd.read_csv(kaggle_csv)
    tests = table(kaggle, "eda_tests")
    spend = tests[tests["variable"] == "amount"].set_index("group_by")
    season = spend.loc["season"]
    groups = [g["Purchase Amount (USD)"].to_numpy() for _, g in raw.groupby("Season")]
    want = stats.kruskal(*groups)
    assert season["test"] == "Kruskal-Wallis H"
    assert season["statistic"] == pytest.approx(want.statistic)
    assert season["p_value"] == pytest.approx(want.pvalue)
    assert season["effect_size"] == pytest.approx(want.statistic / (3900 - 1))
    sub = spend.loc["subscription"]
    yes = raw.loc[raw["Subscription Status"] == "No", "Purchase Amount (USD)"]
    no = raw.loc[raw["Subscription Status"] == "Yes", "Purchase Amount (USD)"]
    assert sub["p_value"] == pytest.approx(stats.mannwhitneyu(yes, no).pvalue)
    # Benjamini-Hochberg: adjusted >= raw, order kept, significance from the adjusted value
    assert (tests["p_adjusted"] >= tests["p_value"] - 1e-12).all()
    ordered = tests.sort_values("p_value")
    assert ordered["p_adjusted"].is_monotonic_increasing
    assert (tests["significant"] == (tests["p_adjusted"] < 0.05)).all()
    mix = tests[tests["test"] == "chi-square test of independence"]
    assert {"category", "payment_method"} <= set(mix["variable"])
    assert all(f.startswith(("No evidence", "Spend", "The ")) for f in tests["finding"])
    assert tests["sample"].str.contains("all 3,900 purchase lines").all()


def test_kaggle_snapshot_segments_follow_the_stated_rules(kaggle, kaggle_csv):
    raw = pd.read_csv(kaggle_csv).set_index("Customer ID")
    seg = table(kaggle, "customer_segments")
    seg["cid"] = seg["customer_id"].astype(int)
    seg = seg.set_index("cid").loc[raw.index]
    prev = raw["Previous Purchases"]
    prev_score = 1 + (prev.to_numpy()[:, None] > np.quantile(prev, [.2, .4, .6, .8])).sum(1)
    cadence = raw["Frequency of Purchases"].map({
        "Annually": 1, "Quarterly": 2, "Every 3 Months": 2, "Monthly": 3, "Fortnightly": 4,
        "Bi-Weekly": 4, "Weekly": 5})
    f_score = np.floor((prev_score + cadence.to_numpy()) / 2 + 0.5).astype(int)
    amount = raw["Purchase Amount (USD)"]
    m_score = 1 + (amount.to_numpy()[:, None] > np.quantile(amount, [.2, .4, .6, .8])).sum(1)
    assert (seg["f_score"].to_numpy() == f_score).all()
    assert (seg["m_score"].to_numpy() == m_score).all()
    tier = {1: "Occasional", 2: "Occasional", 3: "Regular", 4: "Frequent", 5: "Frequent"}
    spend = {1: "low spend", 2: "low spend", 3: "mid spend", 4: "high spend", 5: "high spend"}
    want = [f"{tier[f]}, {spend[m]}" for f, m in zip(f_score, m_score, strict=True)]
    assert seg["segment"].tolist() == want
    summary = table(kaggle, "segment_summary")
    assert summary["customers"].sum() == 3900
    assert summary["revenue"].sum() == pytest.approx(amount.sum())
    assert summary["revenue_share"].sum() == pytest.approx(1.0)
    # mean predicted CLV per segment, from the predict stage's table
    preds = table(kaggle, "customer_predictions")[["customer_id", "clv"]]
    want = seg.merge(preds, on="customer_id").groupby("segment")["clv"].mean()
    got = summary.set_index("segment").loc[want.index, "avg_clv"]
    assert np.allclose(got, want) and want.notna().all()


def test_kaggle_clusters_are_chosen_and_described(kaggle):
    cl = table(kaggle, "clusters")
    k = len(cl)
    assert 2 <= k <= 8 and cl["customers"].sum() == 3900
    assert cl["k_criterion"].iloc[0].startswith(f"k = {k} of 2-8 by the highest mean silhouette")
    scores = dict(pair.split(": ") for pair in
                  cl["k_criterion"].iloc[0].split("(", 1)[1].rstrip(")").split("; ")[1].split(", "))
    assert max(scores, key=lambda kk: float(scores[kk])) == f"k={k}"
    assert cl["cluster_label"].is_unique
    assert all(d.startswith(("Compared with all customers:", "Close to the average"))
               for d in cl["description"])
    seg = table(kaggle, "customer_segments")
    assert seg["cluster_id"].notna().all()
    assert dict(seg["cluster_label"].value_counts()) == dict(zip(cl["cluster_label"],
                                                                 cl["customers"], strict=True))


# -- CDNOW dated log --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow_customers(cdnow_master):
    raw = read_cdnow(cdnow_master)
    as_of = raw["date"].max()
    per = raw.groupby("customer").agg(last=("date", "max"), spend=("amount", "sum"),
                                      occasions=("date", "nunique"))
    per["recency"] = [(as_of - d).days for d in per["last"]]
    return raw, per


def test_cdnow_rfm_scores_and_segments(cdnow, cdnow_customers):
    _raw, per = cdnow_customers
    seg = table(cdnow, "customer_segments").set_index("customer_id").loc[per.index]
    r_cuts = np.quantile(per["recency"], [.2, .4, .6, .8])
    f_cuts = np.quantile(per["occasions"], [.2, .4, .6, .8])
    m_cuts = np.quantile(per["spend"], [.2, .4, .6, .8])
    assert (seg["r_score"].to_numpy() == 5 - (per["recency"].to_numpy()[:, None] > r_cuts)
            .sum(1)).all()
    assert (seg["f_score"].to_numpy() == 1 + (per["occasions"].to_numpy()[:, None] > f_cuts)
            .sum(1)).all()
    assert (seg["m_score"].to_numpy() == 1 + (per["spend"].to_numpy()[:, None] > m_cuts)
            .sum(1)).all()
    rules = {s.name: s for s in segments.RF_SEGMENTS}
    assert all(r in rules[s].r and f in rules[s].f
               for s, r, f in zip(seg["segment"], seg["r_score"], seg["f_score"], strict=True))
    assert set(seg["scheme"]) == {"rfm"} and len(seg) == 23570
    summary = table(cdnow, "segment_summary").set_index("segment")
    assert summary.loc["Champions", "avg_recency_days"] < summary.loc["Hibernating",
                                                                      "avg_recency_days"]
    assert summary.loc["Champions", "avg_frequency"] > summary.loc["Hibernating",
                                                                   "avg_frequency"]
    assert summary["revenue"].sum() == pytest.approx(per["spend"].sum(), abs=0.05)
    a = _analyses(cdnow)
    assert a["rfm_segments"]["status"] == "ran"
    assert a["snapshot_segments"]["reason"] == "dated data uses RFM segments instead"


def test_rfm_cut_points_are_configurable(cdnow, cdnow_customers):
    _raw, per = cdnow_customers
    settings = load_settings(home=cdnow, insights={"rfm": {
        "frequency_cuts": [1, 2, 4, 8], "recency_cut_days": [30, 90, 180, 365]}})
    with store(settings, read_only=True) as s:
        ctx = new_context(s, settings)
        seg, info = segments.rfm_segments(ctx, segments.load_customers(ctx))
    assert info["source"] == "configured"
    seg = seg.set_index("customer_id").loc[per.index]
    assert (seg["f_score"].to_numpy() == 1 + (per["occasions"].to_numpy()[:, None]
                                              > np.array([1, 2, 4, 8])).sum(1)).all()
    assert (seg["r_score"].to_numpy() == 5 - (per["recency"].to_numpy()[:, None]
                                              > np.array([30, 90, 180, 365])).sum(1)).all()
    with pytest.raises(ValueError, match="four increasing cut points"):
        load_settings(insights={"rfm": {"monetary_cuts": [10, 5, 20, 30]}})


def test_rf_segments_of_a_column_are_the_segment_of_each_cell():
    r = pd.Series([r for r in range(1, 6) for _ in range(5)], dtype="Int64")
    f = pd.Series([f for _ in range(5) for f in range(1, 6)], dtype="Int64")
    assert segments.rf_segments(r, f).tolist() == [
        segments.rf_segment(a, b) for a, b in zip(r, f, strict=True)]


@pytest.mark.parametrize("name", ["kaggle", "cdnow", "synthetic"])
def test_series_from_the_marts_equal_the_series_over_the_lines(name, request, monkeypatch):
    """Without filters the season, month, week and weekday series come from the
    ``agg_sales_by_*`` marts; they are the figures the SQL over every purchase line gives."""
    from purchase_patterns.insights import trends

    home = request.getfixturevalue(name)
    settings = load_settings(home=home)
    exprs = list(trends._MARTS)
    with store(settings, read_only=True) as s:
        ctx = new_context(s, settings)
        dated = ctx.profile.dated
        marts = {(e, d): trends._series(ctx, e, d) for e in exprs for d in (True, False)}
        assert any(trends._from_mart(ctx, e, dated) is not None for e in exprs)
        monkeypatch.setattr(trends, "_MARTS", {})
        for (e, d), got in marts.items():
            want = trends._series(ctx, e, d)
            key = ["period_key"]
            pd.testing.assert_frame_equal(
                got.sort_values(key).reset_index(drop=True),
                want.sort_values(key).reset_index(drop=True), check_dtype=False)


def test_cdnow_calendar_trends_and_growth(cdnow, cdnow_customers):
    raw, _per = cdnow_customers
    tp = table(cdnow, "trend_periods")
    months = tp[tp["grain"] == "month"].sort_values("period_start")
    raw["month"] = pd.to_datetime(raw["date"]).dt.strftime("%Y-%m")
    want = raw.groupby("month")["amount"].sum()
    assert months["period"].tolist() == want.index.tolist() and len(months) == 18
    assert np.allclose(months["revenue"], want.to_numpy(), atol=0.01)
    # 18 months: no seasonal index by calendar month, and no season called a peak
    assert "month_of_year" not in set(tp["grain"])
    seasons = tp[tp["grain"] == "season"]
    assert not seasons["is_peak"].any()
    assert "season and trend cannot be separated" in seasons["peak_method"].iloc[0]
    recent = want.loc["1998-01":"1998-06"].sum()
    before = want.loc["1997-01":"1997-06"].sum()
    growth = _analyses(cdnow)["growth"]
    assert growth["status"] == "ran"
    assert growth["reason"].startswith(f"{recent / before - 1:+.1%}: revenue in the latest 6 "
                                       "months (1998-01 to 1998-06)")
    jun98 = months[months["period"] == "1998-06"].iloc[0]
    assert jun98["growth_vs_year_ago"] == pytest.approx(
        want.loc["1998-06"] / want.loc["1997-06"] - 1)
    a = _analyses(cdnow)
    assert a["preferences"]["status"] == a["attribute_affinity"]["status"] == "skipped"
    assert a["attribute_affinity"]["reason"] == "no product categories"


def test_cdnow_recommendations_are_ranked_and_backed_by_figures(cdnow):
    rec = table(cdnow, "recommendations")
    assert rec["rank"].tolist() == list(range(1, len(rec) + 1)) and len(rec) >= 3
    assert rec["value_at_stake"].is_monotonic_decreasing
    assert rec["rationale"].str.contains(r"\$\d", regex=True).all()
    for r in rec.to_dict("records"):
        assert isinstance(json.loads(r["evidence_json"]), dict)
        assert r["value_basis"]
    decline = rec[rec["title"] == "Stop the revenue decline"]
    assert len(decline) == 1 and decline["value_at_stake"].iloc[0] > 0


# -- synthetic data with known seasonality -----------------------------------------------------


def test_synthetic_peaks_are_the_generators(synthetic):
    tp = table(synthetic, "trend_periods")
    moy = tp[tp["grain"] == "month_of_year"].set_index("period")
    peaks = set(moy.index[moy["is_peak"].astype(bool)])
    assert {"Nov", "Dec"} <= peaks  # the holiday peak
    assert peaks & {"Jun", "Jul", "Aug"}  # the summer bump
    assert not peaks & {"Jan", "Feb", "Mar", "Apr", "May", "Sep"}
    assert moy.loc["Dec", "index"] > moy.loc["Nov", "index"] > 1.2
    months = tp[tp["grain"] == "month"]
    peak_months = {p[5:] for p in months.loc[months["is_peak"].astype(bool), "period"]}
    assert peak_months and peak_months <= {"11", "12"}
    weeks = tp[tp["grain"] == "week"]
    peak_weeks = pd.to_datetime(weeks.loc[weeks["is_peak"].astype(bool), "period_start"])
    assert len(peak_weeks) and (peak_weeks.dt.month.isin([11, 12])).mean() >= 0.8
    assert "Nov" in _analyses(synthetic)["calendar_trends"]["reason"]


def test_synthetic_seasonal_preferences_are_the_generators(synthetic):
    truth = json.loads((synthetic / "input" / "synthetic.truth.json").read_text())
    mix = truth["seasonality"]["category_mix_by_season"]
    pref = table(synthetic, "preferences")
    cat = pref[(pref["dimension"] == "season") & pref["item_name"].isna()].set_index(
        ["value", "category_name"])
    # Outerwear sells in winter and not in summer, as the generator's mix says
    assert mix["Winter"]["Outerwear"] > 5 * mix["Summer"]["Outerwear"]
    assert cat.loc[("Winter", "Outerwear"), "index_vs_overall"] > 1.3
    assert cat.loc[("Summer", "Outerwear"), "index_vs_overall"] < 0.5
    shares = cat["share_within_value"].groupby(level=0).sum()
    assert np.allclose(shares, 1.0)
    items = pref[(pref["dimension"] == "season") & pref["item_name"].notna()].set_index(
        ["value", "item_name"])
    for item in ("Sandals", "Shorts", "Sunglasses"):
        assert items.loc[("Summer", item), "index_vs_overall"] > 1.5, item
    for item in ("Gloves", "Scarf", "Coat"):
        assert items.loc[("Winter", item), "index_vs_overall"] > 1.5, item
    aff = table(synthetic, "affinity")
    rule = aff[(aff["antecedent"] == "season=Winter") & (aff["consequent"]
                                                         == "category=Outerwear")].iloc[0]
    assert rule["lift"] > 1.3 and rule["p_value"] < 1e-6
    assert rule["lift"] == pytest.approx(rule["confidence"] / (
        aff[(aff["antecedent"].str.startswith("season=")) & (aff["consequent"]
                                                             == "category=Outerwear")]["n"]
        .sum() / aff[aff["antecedent"].str.startswith("season=") & aff["consequent"]
                     .str.startswith("category=")]["n"].sum()), rel=0.02)


def test_synthetic_item_pairs_match_the_file(synthetic):
    raw = pd.read_csv(synthetic / "input" / "synthetic.csv")
    occ = raw.drop_duplicates(["Customer ID", "Purchase Date", "Item Purchased"])
    size = occ.groupby(["Customer ID", "Purchase Date"])["Item Purchased"].transform("size")
    basket = occ[size > 1]
    n_baskets = basket.groupby(["Customer ID", "Purchase Date"]).ngroups
    item_n = basket["Item Purchased"].value_counts()
    pairs = table(synthetic, "affinity")
    pairs = pairs[pairs["kind"] == "item_pair"]
    assert len(pairs), "the generator puts several items on some days"
    for r in pairs.to_dict("records"):
        together = basket.groupby(["Customer ID", "Purchase Date"])["Item Purchased"].apply(
            lambda s, a=r["antecedent"], b=r["consequent"]: a in set(s) and b in set(s)).sum()
        assert r["n"] == together >= 5
        assert r["lift"] == pytest.approx(together * n_baskets / (
            item_n[r["antecedent"]] * item_n[r["consequent"]]))


def test_synthetic_segments_and_clusters_separate_active_from_lapsed(synthetic):
    summary = table(synthetic, "segment_summary").set_index("segment")
    assert set(summary.index) == {s.name for s in segments.RF_SEGMENTS}
    assert summary.loc["At Risk", "avg_frequency"] > summary.loc["Hibernating", "avg_frequency"]
    assert summary.loc["Champions", "revenue_last_12_months"] > summary.loc[
        "At Risk", "revenue_last_12_months"] == 0
    cl = table(synthetic, "clusters")
    recency = {r["cluster_label"]: json.loads(r["profile_json"])["recency_days"]["z"]
               for r in cl.to_dict("records")}
    # BG/NBD dropout leaves lapsed customers: some cluster is recent, another lapsed
    assert min(recency.values()) < -0.5 and max(recency.values()) > 0.5


def test_synthetic_recommendations(synthetic):
    rec = table(synthetic, "recommendations")
    assert "Prepare for the Nov-Dec peak" in rec["title"].tolist()
    assert rec["value_at_stake"].is_monotonic_decreasing and len(rec) == 8  # the default cap
    # every candidate, beyond the eight kept: the seasonal category the generator put there
    tables = {t: table(synthetic, t) for t in SCHEMAS if t != "customer_segments"}
    span = int(scalar(synthetic / "warehouse.duckdb",
                      "select max(purchase_date) - min(purchase_date) from marts.fct_purchases"))
    from purchase_patterns.insights import predictions
    from purchase_patterns.insights.stage import new_context

    settings = load_settings(home=synthetic)
    with store(settings, read_only=True) as s:
        overview = predictions.overview(new_context(s, settings))
    assert overview is not None  # the predict stage ran before analyze
    everything = recommend.recommend(recommend.Inputs(tables, span, overview, 0.05, 30, 50,
                                                      0.05))
    feature = everything[everything["title"] == "Feature Outerwear in Winter"]
    assert len(feature) == 1 and len(everything) > 8
    # kept exactly when it ranks within the cap
    assert (feature["rank"].iloc[0] <= 8) == ("Feature Outerwear in Winter" in set(rec["title"]))
    assert "lift 1." in feature["rationale"].iloc[0]
    assert feature["value_at_stake"].iloc[0] == pytest.approx(
        feature["revenue_at_stake"].iloc[0] * 365 / (span + 1))
    peak = rec[rec["title"] == "Prepare for the Nov-Dec peak"].iloc[0]
    tp = table(synthetic, "trend_periods")
    months = tp[tp["grain"] == "month"].copy()
    months["m"] = pd.to_datetime(months["period_start"]).dt.month
    per_year = months.groupby("m")["revenue"].mean()
    assert peak["value_at_stake"] == pytest.approx(per_year[11] + per_year[12])
    assert json.loads(peak["evidence_json"])["months"] == ["Nov", "Dec"]


def test_analyze_is_idempotent_and_reads_predictions(synthetic, home_copy):
    """Re-running gives the same tables; with predictions in the contract's shape, mean CLV
    per segment, the predict analyses and a churn recommendation appear."""
    home = home_copy(synthetic)
    settings = load_settings(home=home)
    analyze(settings, "again")
    for name in ("segment_summary", "eda_tests", "trend_periods", "recommendations"):
        a, b = table(synthetic, name), table(home, name)
        pd.testing.assert_frame_equal(a.drop(columns="run_id"), b.drop(columns="run_id"))
    # predictions in the contract's columns, built from the customer features (a fixture of
    # the predict stage's table, not a model): CLV = total spend, churn when lapsed a year
    with store(settings) as s:
        cf = s.query("select customer_id, total_spend, days_since_last_purchase "
                     "from marts.customer_features")
        preds = pd.DataFrame({
            "customer_id": cf["customer_id"], "clv_method": "bgnbd_gamma_gamma",
            "expected_purchases": 1.0, "p_alive": 0.5, "expected_avg_spend": 10.0,
            "clv": cf["total_spend"].astype(float),
            "churn_probability": np.where(cf["days_since_last_purchase"] > 365, 0.8, 0.1),
            "horizon_months": 12, "model_version": "test", "run_id": "test"})
        s.write("analytics", "customer_predictions", preds)
    analyze(load_settings(home=home, insights={"max_recommendations": 50}), "with-predictions")
    seg = table(home, "customer_segments")[["customer_id", "segment"]]
    want = seg.merge(preds, on="customer_id").groupby("segment")["clv"].mean()
    summary = table(home, "segment_summary").set_index("segment")
    assert np.allclose(summary.loc[want.index, "avg_clv"], want)
    a = _analyses(home)
    assert a["clv_bgnbd_gamma_gamma"]["status"] == "ran"
    assert a["churn_classifier"]["status"] == "ran"
    rec = table(home, "recommendations")
    churn = rec[rec["title"] == "Retain the customers most likely to churn"]
    high = preds["churn_probability"] >= 0.5
    assert churn["customers"].iloc[0] == high.sum()
    assert churn["clv_at_stake"].iloc[0] == pytest.approx(preds.loc[high, "clv"].sum())
    seg_recs = rec[rec["source"] == "segment_summary"]
    assert (seg_recs["value_basis"] == "predicted CLV of these customers").all()
    assert not math.isnan(float(scalar(home / "warehouse.duckdb",
                                       "select sum(total_clv) from analytics.segment_summary")))
    # the report's predictions section reads the model cards and metrics
    with store(settings) as s:
        s.write("analytics", "model_cards", pd.DataFrame({
            "model": ["clv"], "title": ["BG/NBD + Gamma-Gamma CLV (test card)"],
            "card_json": [json.dumps({"caveats": ["a card written by the test"]})],
            "run_id": ["test"], "created_at": [pd.Timestamp("2026-01-01")]}))
        s.write("analytics", "model_metrics", pd.DataFrame({
            "model": ["clv"], "metric": ["holdout_mae"], "value": [12.5],
            "baseline": ["mean spend"], "baseline_value": [20.25], "run_id": ["test"]}))
    res = build_report(settings, "with-predictions")
    text = subprocess.run(["pdftotext", "-layout", str(res.pdf), "-"], capture_output=True,
                          text=True, check=True).stdout if res.pdf else \
        res.html.read_text(encoding="utf-8")
    assert f"{len(preds):,} customers in scope have a prediction" in " ".join(text.split())
    for words in ("BG/NBD + Gamma-Gamma CLV (test card)", "holdout_mae", "12.500",
                  "a card written by the test", "Retain the customers most likely to churn"):
        assert words in text, words
    assert "Predictions are not available" not in text


def test_large_data_uses_a_seeded_sample_for_tests(cdnow):
    """Above ``insights.sample_lines`` the tests run on a reproducible sample, and say so."""
    from purchase_patterns.insights import eda

    def draw(seed: int) -> eda.LineSample:
        settings = load_settings(home=cdnow, seed=seed, insights={"sample_lines": 5000})
        with store(settings, read_only=True) as s:
            return eda.sample_lines(new_context(s, settings))

    a, b, other = draw(42), draw(42), draw(7)
    assert a.sampled and a.n_in_scope == 69659
    assert abs(len(a.frame) - 5000) < 250
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert not a.frame.equals(other.frame.reindex_like(a.frame))
    assert a.note.startswith(f"a seeded sample of {len(a.frame):,} of 69,659 purchase lines")
    # spread over the whole log, not a block of it: every season, and the log's mean spend
    assert set(a.frame["season"]) == {"Winter", "Spring", "Summer", "Fall"}
    assert a.frame["amount"].mean() == pytest.approx(35.89, rel=0.05)

"""The predict stage on real warehouses: the tables of the contract, one prediction per
customer, model cards in the warehouse and in reports/, the CDNOW benchmark beside the
published estimates, the snapshot path, skips with reasons, re-runs, and the CLI."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import query, scalar

from purchase_patterns.pipeline import DOWNSTREAM, new_summary, predict_stage
from purchase_patterns.settings import load_settings

TABLES = ("customer_predictions", "model_cards", "model_metrics", "propensity_scores")


def _predict(home: Path, **models):
    settings = load_settings(home=home, models=models) if models else load_settings(home=home)
    summary = new_summary(settings, "test")
    predict_stage(settings, summary)
    return summary


def _copy(built: Path, tmp_path_factory, name: str) -> Path:
    home = tmp_path_factory.mktemp(name) / "home"
    shutil.copytree(built, home)
    return home


def _frame(home: Path, table: str) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(f"select * from analytics.{table}").df()
    finally:
        con.close()


def _cards(home: Path) -> dict[str, dict]:
    return {r[0]: json.loads(r[1]) for r in query(
        home / "warehouse.duckdb", "select model, card_json from analytics.model_cards")}


@pytest.fixture(scope="module")
def cdnow(built_home, tmp_path_factory):
    """The CDNOW sample predicted with the classic 39-week calibration."""
    home = _copy(built_home("cdnow_sample"), tmp_path_factory, "cdnow")
    return home, _predict(home, calibration_end=date(1997, 9, 30))


@pytest.fixture(scope="module")
def kaggle(built_home, tmp_path_factory):
    home = _copy(built_home("kaggle"), tmp_path_factory, "kaggle")
    return home, _predict(home)


def test_predict_runs_right_after_transform():
    names = [name for name, _ in DOWNSTREAM]
    assert names.index("predict") == names.index("transform") + 1


def test_cdnow_one_prediction_per_customer(cdnow):
    home, summary = cdnow
    db = home / "warehouse.duckdb"
    preds = _frame(home, "customer_predictions")
    assert len(preds) == scalar(db, "select count(*) from marts.customer_features") == 2357
    assert preds["customer_id"].is_unique
    assert set(preds["clv_method"]) == {"bgnbd_gamma_gamma"}
    for col in ("expected_purchases", "p_alive", "expected_avg_spend", "clv",
                "churn_probability"):
        assert preds[col].notna().all(), col
    assert preds["p_alive"].between(0, 1).all() and preds["churn_probability"].between(0, 1).all()
    assert (preds["expected_purchases"] >= 0).all() and (preds["clv"] >= 0).all()
    # customers with no repeat purchase get the model's prediction too (alive by definition)
    single = preds[preds["repeat_purchases"] == 0]
    assert len(single) > 1000 and np.allclose(single["p_alive"], 1.0)
    assert (single["expected_purchases"] > 0).all()
    assert (preds["horizon_months"] == 12).all() and (preds["run_id"] == summary.run_id).all()
    assert preds["model_version"].str.contains("clv_bgnbd_gamma_gamma@").all()
    assert preds["model_version"].str.contains("churn_classifier@").all()
    # the forecasts rank customers: the best decile by CLV holds most of the value
    top = preds["clv"].nlargest(236).sum() / preds["clv"].sum()
    assert top > 0.3


def test_cdnow_card_shows_benchmark_split_and_baselines(cdnow):
    home, summary = cdnow
    cards = _cards(home)
    assert set(cards) == {"clv_bgnbd_gamma_gamma", "churn_classifier", "clv_heuristic",
                          "subscription_propensity"}
    c = cards["clv_bgnbd_gamma_gamma"]
    assert c["status"] == "ran" and c["run_id"] == summary.run_id
    bench = c["benchmark"]
    assert bench["bgnbd"]["published"]["r"] == 0.243
    assert bench["bgnbd"]["this_package"]["r"] == pytest.approx(0.243, abs=5e-4)
    assert bench["bgnbd"]["this_package"]["log_likelihood"] == pytest.approx(-9582.4, abs=0.05)
    assert "Marketing Science" in bench["bgnbd"]["source"]
    assert bench["gamma_gamma"]["this_package"]["q"] == pytest.approx(3.74, abs=5e-3)
    assert c["split"]["calibration_end"] == "1997-09-30"
    assert c["split"]["holdout_weeks"] == pytest.approx(39.0)
    holdout = c["metrics"]["holdout"]
    for block in ("purchases", "spend"):
        assert set(holdout[block]) == {"model", "baseline_zero", "baseline_calibration_rate"}
    p = holdout["purchases"]
    # the model forecasts the holdout better than repeating the calibration rate
    assert p["model"]["mae"] < p["baseline_calibration_rate"]["mae"]
    assert p["model"]["rmse"] < p["baseline_zero"]["rmse"]
    assert abs(p["model"]["aggregate_error_pct"]) < abs(
        p["baseline_calibration_rate"]["aggregate_error_pct"])
    assert 0.5 < p["model"]["normalised_gini"] <= 1
    assert len(holdout["deciles"]) == 10 and holdout["by_frequency"][0]["customers"] == 1411
    assert c["caveats"] and c["parameters"]["production"]["bgnbd"]["converged"]
    # the same card is in reports/<run id>/
    on_disk = json.loads((home / "reports" / summary.run_id / "model_cards"
                          / "clv_bgnbd_gamma_gamma.json").read_text())
    assert on_disk == c
    assert (home / "reports" / summary.run_id / "model_cards.md").exists()

    churn = cards["churn_classifier"]
    assert churn["status"] == "ran"
    assert set(churn["baselines"]) == {"recency_only", "bgnbd_p_purchase"}
    assert churn["split"]["window_days"] == 273
    for key in ("roc_auc", "pr_auc", "brier", "lift_top_decile"):
        assert 0 <= churn["metrics"]["test"][key] <= 10
    assert len(churn["metrics"]["calibration_curve"]) == 10
    assert {d["feature"] for d in churn["metrics"]["permutation_importance"]} == set(
        churn["data"]["features"])
    assert churn["verdict"].startswith(("beats", "does NOT beat"))
    assert [f for f in churn["leakage_check"] if f["flagged"]] == []


def test_cdnow_metrics_table(cdnow):
    home, summary = cdnow
    m = _frame(home, "model_metrics")
    assert (m["run_id"] == summary.run_id).all()
    mae = m[(m["model"] == "clv_bgnbd_gamma_gamma") & (m["metric"] == "holdout_purchases_mae")]
    assert set(mae["baseline"]) == {"baseline_zero", "baseline_calibration_rate"}
    assert mae["baseline_value"].notna().all() and mae["value"].nunique() == 1
    bench = m[m["metric"] == "cdnow_39wk_bgnbd_alpha"].iloc[0]
    assert bench["baseline_value"] == 4.414 and bench["value"] == pytest.approx(4.414, abs=5e-4)
    churn = m[(m["model"] == "churn_classifier") & (m["metric"] == "roc_auc")]
    assert set(churn["baseline"]) == {"recency_only", "bgnbd_p_purchase"}
    assert _frame(home, "propensity_scores").empty  # no subscription in CDNOW


def test_cdnow_summary_records_every_model(cdnow):
    _, summary = cdnow
    stage = summary.stages[-1]
    assert stage.name == "predict" and stage.status == "ran"
    models = stage.detail["models"]
    assert [models[k]["status"] for k in ("clv_bgnbd_gamma_gamma", "churn_classifier",
                                          "clv_heuristic", "subscription_propensity")] == [
        "ran", "ran", "skipped", "skipped"]
    assert "BG/NBD" in models["clv_heuristic"]["reason"]
    assert "subscription" in models["subscription_propensity"]["reason"]
    assert stage.detail["calibration_end"] == "1997-09-30"
    log = query(Path(summary.warehouse), "select status, rows from meta.run_log where run_id = ? "
                "and stage = 'predict'", [summary.run_id])
    assert log == [("ran", 2357)]


def test_rerun_replaces_the_tables_with_the_same_results(cdnow, tmp_path):
    home, first = cdnow
    before = _frame(home, "customer_predictions").drop(columns="run_id")
    again = _predict(home, calibration_end=date(1997, 9, 30))
    after = _frame(home, "customer_predictions")
    assert (after["run_id"] == again.run_id).all()
    pd.testing.assert_frame_equal(before, after.drop(columns="run_id"))
    assert scalar(home / "warehouse.duckdb", "select count(distinct run_id) from "
                  "analytics.model_cards") == 1


def test_calibration_end_outside_the_data_fails_the_stage_and_keeps_tables(cdnow):
    home, _ = cdnow
    before = _frame(home, "customer_predictions")
    summary = _predict(home, calibration_end=date(1999, 1, 1))
    assert summary.exit_code == 2 and summary.stages[-1].status == "failed"
    assert "1999-01-01" in summary.errors[0] and "1998-06-30" in summary.errors[0]
    pd.testing.assert_frame_equal(before, _frame(home, "customer_predictions"))


def test_kaggle_snapshot_heuristic_and_propensity(kaggle):
    home, summary = kaggle
    preds = _frame(home, "customer_predictions")
    assert len(preds) == 3900 and preds["customer_id"].is_unique
    assert set(preds["clv_method"]) == {"heuristic_snapshot"}
    assert preds["p_alive"].isna().all() and preds["churn_probability"].isna().all()
    assert preds["clv"].notna().all() and (preds["clv"] > 0).all()
    # stated cadence x spend x horizon: a weekly buyer is worth ~52 purchases a year
    db = home / "warehouse.duckdb"
    weekly = query(db, "select f.monetary_value, p.clv, p.expected_purchases "
                   "from analytics.customer_predictions p join marts.customer_features f "
                   "using (customer_id) where f.stated_purchase_frequency = 'Weekly' limit 1")[0]
    assert weekly[2] == pytest.approx(52.0) and weekly[1] < weekly[0] * 52
    scores = _frame(home, "propensity_scores")
    assert len(scores) == 3900 and set(scores["target"]) == {"has_subscription"}
    assert scores["score"].between(0, 1).all() and scores["score_without_leaky"].between(0, 1).all()
    assert "discount_share" in scores["leaky_features"].iloc[0]
    cards = _cards(home)
    assert cards["clv_bgnbd_gamma_gamma"]["status"] == "skipped"
    assert "no purchase dates" in cards["clv_bgnbd_gamma_gamma"]["reason"]
    assert "HEURISTIC" in cards["clv_heuristic"]["summary"][0]
    prop = cards["subscription_propensity"]
    assert prop["metrics"]["all_features"]["roc_auc"] > 0.85
    assert prop["metrics"]["without_leaky"]["roc_auc"] < 0.6
    models = summary.stages[-1].detail["models"]
    assert models["churn_classifier"]["status"] == "skipped"


def test_synthetic_recovers_truth_through_the_warehouse(built_home, tmp_path_factory):
    """3,000 generated customers through ingest, dbt and the stage, in calendar time with
    same-day purchases merged: the whole-period BG/NBD estimates stay within 3 standard
    errors of the truth. The Gamma-Gamma p, q, gamma are not comparable one by one (the
    generator multiplies each purchase by a category price factor, which adds spread), but
    the mean spend p*gamma/(q-1) is preserved: within 5% of the truth."""
    built = built_home("synthetic")
    truth = json.loads((built / "input" / "synthetic.truth.json").read_text())
    home = _copy(built, tmp_path_factory, "synthetic")
    _predict(home)
    c = _cards(home)["clv_bgnbd_gamma_gamma"]
    fit = c["parameters"]["production"]["bgnbd"]
    for k, v in truth["params"]["bgnbd"].items():
        assert abs(fit["params"][k] - v) <= 3 * fit["std_errors"][k], (k, fit["params"][k], v)
    gg = c["parameters"]["production"]["gamma_gamma"]["params"]
    assert gg["p"] * gg["gamma"] / (gg["q"] - 1) == pytest.approx(
        truth["implied"]["mean_spend_usd"], rel=0.05)
    preds = _frame(home, "customer_predictions")
    assert len(preds) == 3000 and preds["churn_probability"].notna().all()
    assert _cards(home)["churn_classifier"]["metrics"]["test"]["roc_auc"] > 0.7


def test_cli_predict_with_model_options(built_home, tmp_path_factory):
    from test_cli import cli

    home = _copy(built_home("cdnow_sample"), tmp_path_factory, "cli")
    done = cli("--json", "predict", "--calibration-end", "1997-09-30", "--horizon-months", "6",
               "--discount-rate", "0.05", home=home)
    assert done.returncode == 0, done.stderr
    s = json.loads(done.stdout)
    [stage] = [st for st in s["stages"] if st["name"] == "predict"]
    assert stage["detail"]["calibration_end"] == "1997-09-30"
    assert stage["detail"]["models"]["clv_bgnbd_gamma_gamma"]["status"] == "ran"
    assert scalar(home / "warehouse.duckdb", "select min(horizon_months) + max(horizon_months) "
                  "from analytics.customer_predictions") == 12
    bad = cli("predict", "--calibration-end", "1997-02-30", home=home)
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: --calibration-end") and "Traceback" not in bad.stderr


def test_run_accepts_the_model_options():
    from typer.testing import CliRunner

    from purchase_patterns.cli import _with_models, app
    from purchase_patterns.errors import UsageError

    text = CliRunner().invoke(app, ["run", "--help"], terminal_width=200).output
    for option in ("--calibration-end", "--horizon-months", "--discount-rate"):
        assert option in text
    s = _with_models(load_settings(), "1997-09-30", 24, 0.2)
    assert (str(s.models.calibration_end), s.models.horizon_months,
            s.models.discount_rate_annual) == ("1997-09-30", 24, 0.2)
    with pytest.raises(UsageError, match="--discount-rate"):
        _with_models(load_settings(), None, None, 1.5)


def test_summary_rendering_lists_each_model(monkeypatch, cdnow):
    """The human summary shows each model's status under the predict stage (and ignores the
    transform stage's model count)."""
    import copy
    import io

    from rich.console import Console

    from purchase_patterns import cli as cli_module

    summary = copy.deepcopy(cdnow[1])
    summary.stage("transform", "ran", models=22)
    summary.stages.insert(0, summary.stages.pop())
    buf = io.StringIO()
    monkeypatch.setattr(cli_module, "out", Console(file=buf, width=300))
    cli_module._render_summary(summary)
    text = buf.getvalue()
    assert "transform: ran" in text and "predict: ran" in text
    assert "clv_bgnbd_gamma_gamma: ran" in text
    assert "subscription_propensity: skipped — no subscription status in the data" in text


def test_predict_before_transform_is_a_usage_error(settings, cdnow_sample):
    from purchase_patterns.pipeline import ingest_stage

    summary = new_summary(settings, "test")
    ingest_stage(settings, summary, [cdnow_sample])
    predict_stage(settings, summary)
    assert summary.exit_code == 2 and summary.stages[-1].status == "failed"
    assert "run 'purchase-patterns transform'" in summary.errors[-1]


def test_attach_aligns_on_customer_id_with_or_without_the_same_customers():
    from purchase_patterns.predict.stage import _attach, _frame

    preds = pd.DataFrame({"customer_id": ["a", "b", "c"]})
    same = _attach(preds.copy(), pd.DataFrame({"customer_id": ["a", "b", "c"], "v": [1.0, 2, 3]}))
    assert same["v"].tolist() == [1.0, 2.0, 3.0]
    subset = _attach(preds.copy(), pd.DataFrame({"customer_id": ["c", "a"], "v": [3.0, 1.0]}))
    assert subset["customer_id"].tolist() == ["a", "b", "c"]
    assert subset["v"].tolist()[0] == 1.0 and np.isnan(subset["v"].tolist()[1])
    assert subset["v"].tolist()[2] == 3.0
    # scalars fill a column; a missing text column is NULL (None), a missing number NaN
    f = _frame({"id": object, "run_id": object, "x": np.float64, "note": object},
               {"id": np.array(["a", "b"], dtype=object), "run_id": "r1"}, 2)
    assert f["run_id"].tolist() == ["r1", "r1"] and f["note"].tolist() == [None, None]
    assert f["x"].isna().all() and list(f.columns) == ["id", "run_id", "x", "note"]


def test_attach_compares_ids_of_different_storage():
    """pandas string ids (how query results arrive) and object ids align the same way."""
    from purchase_patterns.predict.stage import _attach

    preds = pd.DataFrame({"customer_id": pd.Series(["a", "b"], dtype="string")})
    got = _attach(preds, pd.DataFrame({"customer_id": pd.Series(["a", "b"], dtype=object),
                                       "v": [1.0, 2.0]}))
    assert got["v"].tolist() == [1.0, 2.0]


def test_join_versions_per_row_with_missing_sides():
    from purchase_patterns.predict.stage import _const, _join_versions

    a = pd.Series(["clv@1", None, "clv@1", None], dtype=object)
    b = pd.Series(["churn@2", "churn@2", None, None], dtype=object)
    out = _join_versions(a, b)
    assert out.tolist() == ["clv@1;churn@2", "churn@2", "clv@1", None]
    # rows with the same pair of versions point at one string object, not a copy each
    same = _join_versions(pd.Series(["v"] * 3, dtype=object), pd.Series(["w"] * 3, dtype=object))
    assert same.tolist() == ["v;w"] * 3 and len({id(v) for v in same}) == 1
    c = _const("x", 4)
    assert c.dtype == object and c.tolist() == ["x"] * 4 and len({id(v) for v in c}) == 1


def test_frame_keeps_string_ids_and_numeric_arrays_without_copies():
    from purchase_patterns.predict.stage import _frame

    ids = pd.Series(["a", "b", "c"], dtype="string")
    x = np.array([1.0, 2.0, 3.0])
    f = _frame({"customer_id": object, "x": np.float64}, {"customer_id": ids, "x": x}, 3)
    assert f["customer_id"].tolist() == ["a", "b", "c"]
    assert pd.api.types.is_string_dtype(f["customer_id"].dtype)
    assert np.shares_memory(f["x"].to_numpy(), x)


def test_period_summaries_are_the_same_in_one_batch_or_many(built_home, monkeypatch):
    """The summary is read in batches; where the batches split changes nothing."""
    from purchase_patterns.datastore import store
    from purchase_patterns.predict import data

    settings = load_settings(home=built_home("cdnow_sample"))
    cutoffs = [(date(1997, 9, 30), date(1998, 6, 30)), (date(1998, 6, 30), None)]
    with store(settings, read_only=True) as s:
        whole = data.period_summaries(s, cutoffs)
        monkeypatch.setattr(data, "SUMMARY_BATCH_ROWS", 2048)
        batches = []
        real = s.query_batches
        monkeypatch.setattr(s, "query_batches", lambda *a, **k: batches.append(1) or real(*a, **k))
        parts = data.period_summaries(s, cutoffs)
    assert batches, "the summary is read through query_batches"
    for one, many in zip(whole, parts, strict=True):
        assert len(one) > 2048  # more than one batch
        pd.testing.assert_frame_equal(one, many)
    cal, full = whole
    assert (full["n_holdout"] == 0).all() and (full["holdout_spend"] == 0).all()
    assert cal["n_holdout"].sum() > 0
    assert cal["n_occasions"].dtype == np.int32 and cal["spend"].dtype == np.float64


def test_attach_keeps_shared_version_strings_as_objects():
    from purchase_patterns.predict.stage import _attach, _const

    preds = pd.DataFrame({"customer_id": pd.Series(["a", "b", "c"], dtype="string")})
    got = _attach(preds, pd.DataFrame({"customer_id": pd.Series(["a", "b", "c"], dtype="string"),
                                       "model_version": _const("m@1", 3)}))
    assert got["model_version"].dtype == object
    assert len({id(v) for v in got["model_version"].to_numpy()}) == 1

"""The predict stage: read the marts, run the models the data support, write predictions,
model cards and metrics to ``analytics`` and the cards to ``reports/<run id>/``.

What runs is decided once by :func:`purchase_patterns.capabilities.decide`:

* dated log: BG/NBD + Gamma-Gamma CLV (validated on a calibration/holdout split in time, then
  refitted on the whole period for production) and the next-period purchase classifier;
* snapshot: heuristic CLV from the stated cadence (clearly labelled);
* either, when the data carry subscription status: the subscription propensity model.

Every model that does not run gets a card with the reason, and the run summary lists each
model's status. The stage replaces its four tables on every run (idempotent).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from .. import warehouse
from ..capabilities import MIN_CLASS_SIZE, MIN_REPEAT_CUSTOMERS_BTYD, Capability, decide, profile
from ..datastore import DataStore, store
from ..errors import PurchasePatternsError, UsageError
from ..memory import release_freed_memory
from ..settings import ModelSettings, Settings
from . import btyd, cards, churn, clv, data, propensity, reference
from .bgnbd import fit as fit_bgnbd
from .cards import metric_row

if TYPE_CHECKING:
    from ..pipeline import RunSummary

Progress = Callable[[str, float | None], None]

CLV_BTYD = "clv_bgnbd_gamma_gamma"
CHURN = "churn_classifier"
CLV_HEURISTIC = "clv_heuristic"
PROPENSITY = "subscription_propensity"
MODELS = (CLV_BTYD, CHURN, CLV_HEURISTIC, PROPENSITY)

PREDICTION_COLUMNS: dict[str, Any] = {
    "customer_id": object, "clv_method": object, "expected_purchases": np.float64,
    "p_alive": np.float64, "expected_avg_spend": np.float64, "clv": np.float64,
    "churn_probability": np.float64, "horizon_months": np.int64,
    "discount_rate_annual": np.float64, "churn_window_days": np.float64,
    "repeat_purchases": np.float64, "weeks_first_to_last": np.float64,
    "weeks_observed": np.float64, "model_version": object, "run_id": object,
}
PROPENSITY_COLUMNS: dict[str, Any] = {
    "customer_id": object, "target": object, "score": np.float64,
    "score_without_leaky": np.float64, "leaky_features": object, "model_version": object,
    "run_id": object,
}


def _noop(_msg: str, _frac: float | None = None) -> None:
    return None


def _frame(columns: dict[str, Any], data_: dict[str, Any] | None = None,
           n: int = 0) -> pd.DataFrame:
    """A frame with exactly ``columns`` (in order, with their dtypes); missing ones NULL.
    A scalar fills its column with that one object (no per-row copies: at 20M customers each
    text column built row by row would cost a gigabyte); text that arrives as a pandas
    string column (the customer ids) stays one, and numeric arrays of the right dtype are
    used as they are, not copied."""
    data_ = data_ or {}
    out = {}
    for col, dtype in columns.items():
        values = data_.get(col)
        if values is None or np.isscalar(values):
            if dtype is object:
                out[col] = _const(values, n)
            else:
                out[col] = pd.Series(np.full(n, np.nan if values is None else values),
                                     dtype=dtype, copy=False)
            continue
        if dtype is object and isinstance(values, pd.Series) and pd.api.types.is_string_dtype(
                values.dtype) and values.dtype != object:
            out[col] = values.reset_index(drop=True)
            continue
        series = pd.Series(values, dtype=object if dtype is object else dtype, copy=False)
        if dtype is object and series.isna().any():
            series = series.where(series.notna(), None)
        out[col] = series
    return pd.DataFrame(out, copy=False)


def _attach(preds: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    """``preds`` (one row per customer) with the columns of ``extra`` (keyed by
    ``customer_id``, a subset of the customers) beside it; customers not in ``extra`` get
    NULL. Both come ordered by customer id, so when they hold the same customers the columns
    are attached in place, without a merge on the text key (which at 20M customers builds a
    hash table of every id); the ids are compared as they are stored (no Python string per
    id)."""
    left = preds["customer_id"].reset_index(drop=True)
    right = extra["customer_id"].reset_index(drop=True)
    if left.size == right.size and bool((left == right).all()):
        for col in extra.columns.drop("customer_id"):
            # keep the column's dtype: an object column of shared version strings set as a
            # bare array would be re-inferred as pandas text, one copy of the text per row
            preds[col] = pd.Series(extra[col].to_numpy(), index=preds.index,
                                   dtype=extra[col].dtype, copy=False)
        return preds
    return preds.merge(extra, on="customer_id", how="left")


def _const(value: Any, n: int) -> pd.Series:
    """A text column holding ``value`` on each of ``n`` rows as one shared object (8 bytes a
    row; a pandas string column would store the text again on every row)."""
    filled = np.empty(n, dtype=object)
    filled[:] = value
    return pd.Series(filled, dtype=object, copy=False)


def _join_versions(first: pd.Series, second: pd.Series) -> np.ndarray:
    """Per row, "<first>;<second>" of two model-version columns (either may be NULL), as an
    object array whose cells point at a handful of shared strings (each column holds one
    version per model, so there are at most four distinct results)."""
    codes_a, versions_a = pd.factorize(first)  # NULL -> -1
    codes_b, versions_b = pd.factorize(second)
    out = np.empty(len(codes_a), dtype=object)
    for i in range(-1, len(versions_a)):
        for j in range(-1, len(versions_b)):
            both = [v for v in (versions_a[i] if i >= 0 else None,
                                versions_b[j] if j >= 0 else None) if v is not None]
            out[(codes_a == i) & (codes_b == j)] = ";".join(both) or None
    return out


@dataclass
class _Results:
    """What the models of one run produced: cards, metric rows, per-model status for the
    run summary, and the per-customer frames (None when no model produced them)."""

    cards: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    predictions: pd.DataFrame | None = None
    propensity: pd.DataFrame | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def skip(self, model: str, reason: str, run_id: str, created_at: datetime) -> None:
        self.statuses[model] = {"status": "skipped", "reason": reason}
        self.cards.append(cards.card(model, status="skipped", reason=reason, run_id=run_id,
                                     created_at=created_at))


@dataclass(frozen=True)
class _Ctx:
    """What every model function needs from the run."""

    models: ModelSettings
    seed: int
    run_id: str
    created_at: datetime
    decisions: dict[str, Capability]
    progress: Progress


# -- settings ---------------------------------------------------------------------------------


def calibration_end(models: ModelSettings, span: data.Span) -> tuple[date, str]:
    """The end of the calibration period and how it was chosen: the configured date, or the
    stated fraction of the data's span after the first purchase date."""
    if models.calibration_end is not None:
        end = models.calibration_end
        if not span.first <= end < span.last:
            raise UsageError(f"calibration end {end} must be on or after the first purchase "
                             f"date ({span.first}) and before the last ({span.last})")
        return end, "set by calibration_end (--calibration-end)"
    days = int(round(models.calibration_fraction * span.days))
    end = span.first + timedelta(days=min(max(days, 0), span.days - 1))
    return end, (f"default: calibration_fraction {models.calibration_fraction:g} of the "
                 f"{span.days}-day span after the first purchase date")


# -- dated data -------------------------------------------------------------------------------


def _benchmark(s: DataStore) -> dict[str, Any]:
    """The classic 39-week CDNOW calibration, fitted and set beside the published MLEs."""
    cal = data.btyd_summary(data.period_summary(s, reference.CDNOW_CALIBRATION_END),
                            reference.CDNOW_CALIBRATION_END)
    bg = fit_bgnbd(cal["x"], cal["t_x"], cal["T"])
    gg = btyd.fit_spend(cal)
    out: dict[str, Any] = {
        "calibration_end": reference.CDNOW_CALIBRATION_END,
        "bgnbd": {"source": reference.BGNBD_SOURCE,
                  "published": {**reference.BGNBD_PUBLISHED.as_dict(),
                                "log_likelihood": reference.BGNBD_PUBLISHED_LL},
                  "this_package": {**bg.params.as_dict(), "log_likelihood": bg.log_likelihood},
                  "std_errors": bg.std_errors, "customers": bg.n_customers},
    }
    if gg.fit is not None:
        out["gamma_gamma"] = {"source": reference.GAMMA_GAMMA_SOURCE,
                              "published": reference.GAMMA_GAMMA_PUBLISHED.as_dict(),
                              "this_package": gg.fit.params.as_dict(),
                              "std_errors": gg.fit.std_errors,
                              "customers": gg.fit.n_customers}
    return out


def _btyd(s: DataStore, ctx: _Ctx, res: _Results, span: data.Span, cal: pd.DataFrame,
          full: pd.DataFrame, cal_end: date, how: str) -> tuple[pd.DataFrame, Any] | None:
    """Fit, validate, refit and predict; returns (predictions, validation) or None when the
    calibration period cannot support the model (recorded as skipped)."""
    m = ctx.models
    n_cal_repeat = int((cal["x"] > 0).sum())
    if n_cal_repeat < MIN_REPEAT_CUSTOMERS_BTYD:
        res.skip(CLV_BTYD, f"only {n_cal_repeat} customers purchased more than once before "
                 f"the calibration end {cal_end} (at least {MIN_REPEAT_CUSTOMERS_BTYD} needed); "
                 "choose a later --calibration-end", ctx.run_id, ctx.created_at)
        return None
    holdout_weeks = (span.last - cal_end).days / data.DAYS_PER_WEEK
    ctx.progress("predict: fitting BG/NBD + Gamma-Gamma on the calibration period", 0.2)
    cal_bg = fit_bgnbd(cal["x"], cal["t_x"], cal["T"])
    cal_gg = btyd.fit_spend(cal)
    val = btyd.validate(cal_bg.params, cal_gg, cal, holdout_weeks=holdout_weeks)
    ctx.progress("predict: refitting on the whole period", 0.4)
    bg = fit_bgnbd(full["x"], full["t_x"], full["T"])
    gg = btyd.fit_spend(full)
    preds = btyd.predict(bg.params, gg, full, horizon_months=m.horizon_months,
                         discount_rate_annual=m.discount_rate_annual)
    fitted = {"bgnbd": bg.params.as_dict(),
              "gamma_gamma": gg.fit.params.as_dict() if gg.fit else None,
              "horizon_months": m.horizon_months, "discount_rate_annual": m.discount_rate_annual}
    version = cards.model_version(CLV_BTYD, fitted)
    preds["model_version"] = _const(version, len(preds))
    bench = (_benchmark(s) if reference.is_cdnow_sample(len(full), span.first, span.last)
             else None)

    caveats = [
        "BG/NBD assumes a constant purchase rate while a customer is alive: seasonality "
        "(holiday peaks) is not modelled, so forecasts over a part of the year are biased "
        "towards the yearly average.",
        "Gamma-Gamma assumes spend per purchase is independent of purchase frequency; the "
        f"correlation between repeat purchases and mean repeat spend is "
        f"{gg.frequency_spend_correlation:.2f} on the whole period.",
        "The accuracy figures come from the calibration fit judged on the holdout; the "
        "predictions written per customer come from a refit on the whole period (same "
        "method, more data), whose accuracy can only be judged in the future.",
        "CLV is discounted revenue, not margin, and excludes customers not yet acquired.",
        "Several purchases by one customer on one day count as one purchase occasion.",
    ]
    for label, f in (("calibration BG/NBD", cal_bg), ("whole-period BG/NBD", bg)):
        if not f.converged:
            caveats.append(f"The {label} fit did not converge cleanly ({f.message}; "
                           f"parameters at bounds: {list(f.at_bounds)}).")
    for label, g in (("calibration", cal_gg), ("whole-period", gg)):
        if g.problem:
            caveats.append(f"The {label} Gamma-Gamma fit is unusable: {g.problem}.")
    if gg.n_excluded_nonpositive:
        caveats.append(f"{gg.n_excluded_nonpositive} repeat customers with a zero mean repeat "
                       "spend were left out of the spend fit.")
    p = val.purchases
    summary_lines = [
        f"holdout ({val.holdout_weeks:.1f} weeks after {cal_end}): per-customer MAE "
        f"{p['model']['mae']:.3f} purchases vs {p['baseline_zero']['mae']:.3f} (everyone zero) "
        f"and {p['baseline_calibration_rate']['mae']:.3f} (repeat the calibration rate)",
        f"RMSE {p['model']['rmse']:.3f} vs {p['baseline_zero']['rmse']:.3f} and "
        f"{p['baseline_calibration_rate']['rmse']:.3f}; aggregate error "
        f"{p['model']['aggregate_error_pct']:+.1f}% "
        f"({p['model']['total_predicted']:.0f} predicted vs {val.total_actual_purchases:.0f} "
        f"actual); normalised Gini {p['model']['normalised_gini']:.3f}",
    ]
    if p["baseline_zero"]["mae"] <= p["model"]["mae"]:
        summary_lines.append(
            "everyone-zero has the lower MAE: most customers buy nothing in the holdout and "
            "MAE rewards forecasting the median (0); the model forecasts the mean, which RMSE, "
            "the aggregate error and the Gini judge")
    if bench:
        b = bench["bgnbd"]
        summary_lines.append(
            "CDNOW 39-week benchmark: r, alpha, a, b = "
            + ", ".join(f"{b['this_package'][k]:.3f}" for k in ("r", "alpha", "a", "b"))
            + " (published " + ", ".join(f"{b['published'][k]:.3f}"
                                         for k in ("r", "alpha", "a", "b")) + ")")
    res.cards.append(cards.card(
        CLV_BTYD, status="ran", reason=ctx.decisions[CLV_BTYD].reason, version=version,
        run_id=ctx.run_id, created_at=ctx.created_at, summary=summary_lines,
        data={"source": "marts.fct_purchases, one purchase occasion per customer and day",
              "first_date": span.first, "last_date": span.last,
              "customers": len(full), "repeat_customers": int((full["x"] > 0).sum()),
              "time_unit": "week"},
        split={"calibration_end": cal_end, "how_chosen": how,
               "calibration": f"{span.first} .. {cal_end}",
               "holdout": f"{cal_end + timedelta(days=1)} .. {span.last}",
               "holdout_weeks": holdout_weeks, "calibration_customers": len(cal),
               "calibration_repeat_customers": n_cal_repeat,
               "note": "customers whose first purchase falls in the holdout are not in the "
                       "validation; each customer's T runs from the first purchase day to the "
                       "calibration end"},
        method={"purchases": "BG/NBD (Fader, Hardie & Lee 2005), maximum likelihood, "
                             "analytic gradient, L-BFGS-B on log parameters",
                "spend": "Gamma-Gamma (Fader, Hardie & Lee 2005) on the mean repeat-occasion "
                         "spend of repeat customers, maximum likelihood",
                "clv": f"sum over the next {m.horizon_months} months of expected purchases x "
                       f"expected spend, discounted at {m.discount_rate_annual:.1%} a year "
                       "(monthly)",
                "p_alive": "P(customer still active) at the end of the data",
                "production": "refit on the whole period; predictions as of "
                              f"{span.last}"},
        parameters={"calibration": {"bgnbd": cal_bg.as_dict(),
                                    "gamma_gamma": cal_gg.fit.as_dict() if cal_gg.fit else None},
                    "production": {"bgnbd": bg.as_dict(),
                                   "gamma_gamma": gg.fit.as_dict() if gg.fit else None}},
        metrics={"holdout": val.as_dict()},
        baselines={"baseline_zero": "every customer makes no purchase in the holdout",
                   "baseline_calibration_rate": "every customer repeats the calibration "
                   "rate x/T (at the calibration mean spend per occasion, for spend)",
                   "baseline_calibration_mean": "the customer's own mean repeat spend",
                   "baseline_population_mean": "the fitted population mean spend"},
        benchmark=bench, caveats=caveats))
    res.statuses[CLV_BTYD] = {"status": "ran", "customers": len(full),
                              "calibration_end": cal_end.isoformat(),
                              "holdout_mae": p["model"]["mae"],
                              "holdout_mae_baseline_rate": p["baseline_calibration_rate"]["mae"]}
    for block, scores in (("holdout_purchases", val.purchases), ("holdout_spend", val.spend)):
        if "model" not in scores:
            continue
        for metric in ("mae", "rmse", "aggregate_error_pct", "normalised_gini"):
            for base in ("baseline_zero", "baseline_calibration_rate"):
                res.metrics.append(metric_row(CLV_BTYD, f"{block}_{metric}",
                                              scores["model"][metric], base,
                                              scores[base][metric]))
    for base, v in val.spend_per_purchase.items():
        if base != "model":
            res.metrics.append(metric_row(CLV_BTYD, "holdout_spend_per_purchase_mae",
                                          val.spend_per_purchase["model"]["mae"], base, v["mae"]))
    for metric in ("roc_auc", "brier"):
        res.metrics.append(metric_row(CLV_BTYD, f"holdout_p_purchase_{metric}",
                                      val.p_purchase[metric]))
    for k, v in bg.params.as_dict().items():
        res.metrics.append(metric_row(CLV_BTYD, f"bgnbd_{k}", v))
    if gg.fit is not None:
        for k, v in gg.fit.params.as_dict().items():
            res.metrics.append(metric_row(CLV_BTYD, f"gamma_gamma_{k}", v))
    if bench:
        for k, v in bench["bgnbd"]["this_package"].items():
            res.metrics.append(metric_row(CLV_BTYD, f"cdnow_39wk_bgnbd_{k}", v,
                                          "published_fader_hardie_lee_2005",
                                          bench["bgnbd"]["published"][k]))
        for k, v in bench.get("gamma_gamma", {}).get("this_package", {}).items():
            res.metrics.append(metric_row(CLV_BTYD, f"cdnow_39wk_gamma_gamma_{k}", v,
                                          "published_fader_hardie_2013",
                                          bench["gamma_gamma"]["published"][k]))
    return preds, val


def _sampled(n_sampled: int | None, n_customers: int) -> dict[str, str]:
    """The model card's note on a training sample (empty when every customer was used)."""
    if n_sampled is None:
        return {}
    return {"sample": f"trained and judged on a stratified random sample of {n_sampled:,} of "
                      f"the {n_customers:,} customers (models.max_training_customers)"}


def _churn(ctx: _Ctx, res: _Results, cal_raw: pd.DataFrame, full_raw: pd.DataFrame,
           cal_end: date, last: date, references: dict[str, np.ndarray]) -> pd.DataFrame | None:
    y = churn.label(cal_raw)
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    if min(n_pos, n_neg) < MIN_CLASS_SIZE:
        res.skip(CHURN, f"{n_pos} customers bought in the holdout window and {n_neg} did not "
                 f"(at least {MIN_CLASS_SIZE} of each needed)", ctx.run_id, ctx.created_at)
        return None
    window_days = (last - cal_end).days
    ctx.progress("predict: training the next-period purchase classifier", 0.6)
    out = churn.train_and_evaluate(churn.features(cal_raw, cal_end), y,
                                   churn.features(full_raw, last), references=references,
                                   seed=ctx.seed,
                                   max_customers=ctx.models.max_training_customers)
    version = cards.model_version(CHURN, {"features": out.used_features, "seed": ctx.seed,
                                          "window_days": window_days,
                                          "model_metrics": out.model_metrics})
    leaky = [f.feature for f in out.leakage if f.flagged]
    caveats = [
        f"The probability is for the next {window_days} days (the length of the holdout "
        "window the model learned from), scored on features as of the end of the data.",
        "Customer attributes (subscription, stated frequency, demographics) are left out: "
        "the feature mart holds their latest values, which may postdate the cutoff.",
        "Assumes the relation between behaviour and returning is stable over time.",
    ]
    if leaky:
        caveats.append(f"Flagged as leaky and left out: {', '.join(leaky)}.")
    if not out.beats_baseline:
        caveats.append("The classifier does not beat the recency-only baseline on this data.")
    mm, bm = out.model_metrics, out.baseline_metrics
    res.cards.append(cards.card(
        CHURN, status="ran", reason=ctx.decisions[CHURN].reason, version=version,
        run_id=ctx.run_id, created_at=ctx.created_at,
        summary=[f"test ROC-AUC {mm['roc_auc']:.3f}, PR-AUC {mm['pr_auc']:.3f}, top-decile "
                 f"lift {mm['lift_top_decile']:.2f} (recency only: {bm['roc_auc']:.3f}, "
                 f"{bm['pr_auc']:.3f}, {bm['lift_top_decile']:.2f})", out.verdict],
        data={"source": "marts.fct_purchases aggregated per customer up to the cutoff",
              "customers": out.n_customers, "features": out.used_features,
              "positive_class": f"buys at least once in the {window_days} days after the cutoff",
              "positive_rate": out.positive_rate},
        split={"feature_cutoff": cal_end, "label_window": f"{cal_end + timedelta(days=1)} .. "
               f"{last}", "window_days": window_days,
               "customers": f"stratified random {1 - churn.TEST_SHARE:.0%} train / "
               f"{churn.TEST_SHARE:.0%} test", "train": out.n_train, "test": out.n_test,
               **_sampled(out.n_sampled, out.n_customers),
               "production": f"refit on the {out.n_train + out.n_test:,} customers above; "
               f"every customer scored on features as of {last}"},
        method={"model": "scikit-learn HistGradientBoostingClassifier (100 trees of depth 3, "
                "learning rate 0.1, at least 50 customers per leaf, L2 1.0)",
                "churn_probability": "1 - P(buys in the next window)"},
        metrics={"test": mm, "calibration_curve": out.calibration,
                 "permutation_importance": out.permutation_importance,
                 "auc_vs_recency_baseline": out.auc_vs_baseline},
        baselines={"recency_only": {"what": "logistic regression on log(1 + days since the "
                                            "last purchase)", "test": bm,
                                    "calibration_curve": out.baseline_calibration},
                   **{name: {"what": "BG/NBD P(at least one purchase in the window), "
                             "calibration fit", "test": v}
                      for name, v in out.reference_metrics.items()}},
        verdict=out.verdict, leakage_check=[f.as_dict() for f in out.leakage],
        caveats=caveats))
    res.statuses[CHURN] = {"status": "ran", "test_roc_auc": mm["roc_auc"],
                           "baseline_roc_auc": bm["roc_auc"],
                           "beats_baseline": out.beats_baseline, "leaky_features": leaky}
    for metric in ("roc_auc", "pr_auc", "brier", "lift_top_decile"):
        res.metrics.append(metric_row(CHURN, metric, mm[metric], "recency_only", bm[metric]))
        for name, v in out.reference_metrics.items():
            res.metrics.append(metric_row(CHURN, metric, mm[metric], name, v[metric]))
    return pd.DataFrame({"customer_id": full_raw["customer_id"],
                         "churn_probability": out.churn_probability,
                         "churn_window_days": float(window_days),
                         "churn_model_version": _const(version, len(full_raw))})


def _dated(s: DataStore, ctx: _Ctx, res: _Results, ids: pd.Series) -> None:
    """BG/NBD + Gamma-Gamma and the churn classifier on one calibration/holdout split."""
    want_btyd = ctx.decisions[CLV_BTYD].supported
    want_churn = ctx.decisions[CHURN].supported
    for name, wanted in ((CLV_BTYD, want_btyd), (CHURN, want_churn)):
        if not wanted:
            res.skip(name, ctx.decisions[name].reason, ctx.run_id, ctx.created_at)
    if not (want_btyd or want_churn):
        return
    span = data.span(s)
    cal_end, how = calibration_end(ctx.models, span)
    res.detail.update(calibration_end=cal_end.isoformat(), calibration_how=how,
                      holdout_end=span.last.isoformat())
    ctx.progress("predict: per-customer calibration/holdout split", 0.1)
    cal_raw, full_raw = data.period_summaries(s, [(cal_end, span.last), (span.last, None)])
    cal = data.btyd_summary(cal_raw, cal_end)
    full = data.btyd_summary(full_raw, span.last)
    preds = pd.DataFrame({"customer_id": ids})
    references: dict[str, np.ndarray] = {}
    if want_btyd:
        got = _btyd(s, ctx, res, span, cal, full, cal_end, how)
        if got is not None:
            btyd_preds, val = got
            references["bgnbd_p_purchase"] = val.p_purchase_holdout
            btyd_preds["clv_method"] = _const("bgnbd_gamma_gamma", len(btyd_preds))
            btyd_preds["repeat_purchases"] = full["x"].to_numpy()
            btyd_preds["weeks_first_to_last"] = full["t_x"].to_numpy()
            btyd_preds["weeks_observed"] = full["T"].to_numpy()
            preds = _attach(preds, btyd_preds)
            del btyd_preds, val, got
    # per-customer frames go as soon as they are used: at 20M customers each is gigabytes
    del cal, full
    release_freed_memory()
    if want_churn:
        churn_preds = _churn(ctx, res, cal_raw, full_raw, cal_end, span.last, references)
        if churn_preds is not None:
            preds = _attach(preds, churn_preds)
            if "model_version" in preds:
                preds["model_version"] = _join_versions(preds["model_version"],
                                                        preds["churn_model_version"])
            else:
                preds["model_version"] = preds["churn_model_version"]
            del churn_preds
    del cal_raw, full_raw
    release_freed_memory()
    if len(preds.columns) > 1:
        res.predictions = preds


# -- snapshot data ----------------------------------------------------------------------------


def _heuristic(ctx: _Ctx, res: _Results, feats: pd.DataFrame) -> None:
    m = ctx.models
    cadence = feats["stated_purchases_per_year"].to_numpy(dtype=np.float64)
    spend = feats["monetary_value"].to_numpy(dtype=np.float64)
    purchases, value = clv.heuristic_clv(cadence, spend, horizon_months=m.horizon_months,
                                         discount_rate_annual=m.discount_rate_annual)
    known = np.isfinite(value)
    n = len(feats)
    version = cards.model_version(CLV_HEURISTIC, {"horizon_months": m.horizon_months,
                                                  "discount_rate_annual": m.discount_rate_annual})
    stated = (feats["stated_purchase_frequency"].astype("string").fillna("(missing)")
              .value_counts().to_dict())
    desc = {"customers": len(feats), "customers_with_cadence": int(known.sum()),
            "mean_clv": float(np.nanmean(value)) if known.any() else None,
            "median_clv": float(np.nanmedian(value)) if known.any() else None,
            "total_clv": float(np.nansum(value)),
            "mean_expected_purchases": float(np.nanmean(purchases)) if known.any() else None}
    res.cards.append(cards.card(
        CLV_HEURISTIC, status="ran", reason=ctx.decisions[CLV_HEURISTIC].reason,
        version=version, run_id=ctx.run_id, created_at=ctx.created_at,
        summary=[f"HEURISTIC, not a fitted model: mean CLV {desc['mean_clv'] or 0:.2f} USD "
                 f"over {m.horizon_months} months for {desc['customers_with_cadence']:,} "
                 "customers with a stated cadence"],
        data={"source": "marts.customer_features (one row per customer; no purchase dates)",
              "customers": len(feats), "stated_frequency_counts": stated},
        split={"none": "a snapshot has no later period to validate against"},
        method={"formula": "stated purchases per year / 12 x spend seen x sum over months "
                           f"1..{m.horizon_months} of (1 + {m.discount_rate_annual:g})^(-i/12)",
                "spend": "the customer's mean purchase amount in the file",
                "cadence": "the customer's stated purchase frequency, mapped to purchases per "
                           "year (reference.purchase_frequencies)"},
        metrics={"descriptive": desc},
        baselines={"none": "there is no outcome to compare with"},
        caveats=["Cannot be validated: the file has no dates, hence no holdout.",
                 "Assumes every customer stays for the whole horizon (no churn) and buys at "
                 "the stated cadence: an optimistic, upper-bound style figure.",
                 "The cadence is self-reported, and the spend is one observed purchase.",
                 "p_alive and churn_probability are NULL: nothing in a snapshot measures "
                 "them."]))
    res.statuses[CLV_HEURISTIC] = {"status": "ran", "customers": int(known.sum())}
    for k in ("mean_clv", "median_clv", "total_clv", "mean_expected_purchases"):
        res.metrics.append(metric_row(CLV_HEURISTIC, k, desc[k]))
    res.predictions = pd.DataFrame({
        "customer_id": feats["customer_id"], "clv_method": _const("heuristic_snapshot", n),
        "expected_purchases": purchases, "expected_avg_spend": spend, "clv": value,
        "model_version": _const(version, n)})


PROPENSITY_FEATURES = ("monetary_value", "n_purchases", "stated_purchases_per_year",
                       "stated_previous_purchases", "preferred_payment_method", "age", "gender",
                       "census_region", "discount_share", "promo_share", "avg_review_rating")


def _propensity(ctx: _Ctx, res: _Results, feats: pd.DataFrame) -> None:
    has = feats["has_subscription"].notna()
    known = feats if bool(has.all()) else feats[has]  # no copy of every customer when all known
    y = known["has_subscription"].astype(bool).to_numpy().astype(np.int64)
    ctx.progress("predict: subscription propensity and leakage check", 0.8)
    out = propensity.train_and_evaluate(known, y, target="has_subscription", seed=ctx.seed,
                                        max_customers=ctx.models.max_training_customers,
                                        columns=list(PROPENSITY_FEATURES))
    leaky = [f.feature for f in out.leakage if f.flagged]
    version = cards.model_version(PROPENSITY, {"all": out.with_all.features,
                                               "clean": out.without_leaky.features,
                                               "seed": ctx.seed})
    a, c, b = out.with_all.metrics, out.without_leaky.metrics, out.baseline
    lines = [f"out-of-fold ROC-AUC {a['roc_auc']:.3f} with all features, {c['roc_auc']:.3f} "
             f"without the flagged ones (prior: {b['roc_auc']:.3f})"]
    if leaky:
        lines.append(f"flagged as leaky: {', '.join(leaky)}")
        if c["roc_auc"] < 0.55:
            lines.append("without them the other columns carry no usable signal about "
                         "subscription")
    res.cards.append(cards.card(
        PROPENSITY, status="ran", reason=ctx.decisions[PROPENSITY].reason, version=version,
        run_id=ctx.run_id, created_at=ctx.created_at, summary=lines,
        data={"source": "marts.customer_features + discount/promo/rating shares from "
                        "marts.fct_purchases", "customers": out.n_customers,
              "target": "has_subscription", "positive_rate": out.positive_rate,
              "candidate_features": list(PROPENSITY_FEATURES)},
        split={"cross_validation": f"{propensity.FOLDS}-fold stratified, out-of-fold "
                                   "predictions", **_sampled(out.n_sampled, out.n_customers),
               "production": "refit on the customers cross-validated; every customer "
                             "scored"},
        method={"model": "logistic regression (L2) on standardised numeric and one-hot "
                         "categorical features"},
        metrics={"all_features": {"features": out.with_all.features, **a,
                                  "calibration_curve": out.with_all.calibration},
                 "without_leaky": {"features": out.without_leaky.features, **c,
                                   "calibration_curve": out.without_leaky.calibration}},
        baselines={"prior": {"what": "everyone scored at the subscription rate", **b}},
        leakage_check=[f.as_dict() for f in out.leakage],
        caveats=["On a snapshot nothing precedes anything: the model describes who looks "
                 "like a subscriber, it does not predict who will subscribe.",
                 "A flagged feature may be a consequence of subscribing (discounts that come "
                 "with it) or an artefact of how the file was made; use score_without_leaky "
                 "to act on customers."]))
    res.statuses[PROPENSITY] = {"status": "ran", "roc_auc_all": a["roc_auc"],
                                "roc_auc_without_leaky": c["roc_auc"], "leaky_features": leaky}
    for metric in ("roc_auc", "pr_auc", "brier", "lift_top_decile"):
        res.metrics.append(metric_row(PROPENSITY, f"{metric}_all_features", a[metric], "prior",
                                      b[metric]))
        res.metrics.append(metric_row(PROPENSITY, f"{metric}_without_leaky", c[metric],
                                      "prior", b[metric]))
    n = len(known)
    res.propensity = pd.DataFrame({
        "customer_id": known["customer_id"].reset_index(drop=True),
        "target": _const("has_subscription", n), "score": out.with_all.scores,
        "score_without_leaky": out.without_leaky.scores,
        "leaky_features": _const(",".join(leaky), n), "model_version": _const(version, n)})


# -- the stage --------------------------------------------------------------------------------


def run_models(s: DataStore, settings: Settings, run_id: str, created_at: datetime,
               progress: Progress = _noop) -> _Results:
    """Decide, run every supported model, and collect cards, metrics and predictions."""
    missing = [t for t in ("fct_purchases", "customer_features") if not s.has_table("marts", t)]
    if missing:
        raise UsageError(f"the warehouse has no marts.{missing[0]} yet: run "
                         "'purchase-patterns transform' (or 'run') first")
    prof = profile(s)
    decisions = {d.analysis: d for d in decide(prof)}
    ctx = _Ctx(settings.models, settings.seed, run_id, created_at, decisions, progress)
    res = _Results()
    ids = data.customer_ids(s)
    if prof.dated:
        _dated(s, ctx, res, ids)
    else:
        for name in (CLV_BTYD, CHURN):
            res.skip(name, decisions[name].reason, run_id, created_at)
    need_snapshot = decisions[CLV_HEURISTIC].supported or decisions[PROPENSITY].supported
    feats = data.snapshot_features(s) if need_snapshot else None
    for name, fn in ((CLV_HEURISTIC, _heuristic), (PROPENSITY, _propensity)):
        if decisions[name].supported:
            assert feats is not None
            fn(ctx, res, feats)
        else:
            res.skip(name, decisions[name].reason, run_id, created_at)
    del feats
    release_freed_memory()
    res.cards.sort(key=lambda c: MODELS.index(c["model"]))
    return res


def _tables(res: _Results, settings: Settings, run_id: str,
            created_at: datetime) -> dict[str, pd.DataFrame]:
    m = settings.models
    if res.predictions is not None:
        p = res.predictions
        n = len(p)
        cols = {c: p[c] for c in PREDICTION_COLUMNS if c in p}
        cols.update(horizon_months=m.horizon_months, discount_rate_annual=m.discount_rate_annual,
                    run_id=run_id)
        predictions = _frame(PREDICTION_COLUMNS, cols, n)
    else:
        predictions = _frame(PREDICTION_COLUMNS)
    if res.propensity is not None:
        propensity_ = _frame(PROPENSITY_COLUMNS, {**{c: res.propensity[c]
                                                     for c in res.propensity},
                                                  "run_id": run_id}, len(res.propensity))
    else:
        propensity_ = _frame(PROPENSITY_COLUMNS)
    return {"customer_predictions": predictions,
            "model_cards": cards.cards_table(res.cards, run_id, created_at),
            "model_metrics": cards.metrics_table(res.metrics, run_id),
            "propensity_scores": propensity_}


def predict_stage(settings: Settings, summary: RunSummary, progress: Progress = _noop) -> None:
    """``fn(settings, summary, progress)`` of the pipeline: run the models, replace the four
    ``analytics`` tables in one transaction, write the cards to ``reports/<run id>/``.

    A user-facing problem (e.g. a calibration end outside the data) fails the stage with its
    one-line message and the error's exit code; the tables of the previous run stay."""
    started = warehouse.now()
    t0 = time.perf_counter()
    progress("predict: deciding which models the data support", 0.0)
    try:
        with store(settings) as s, threadpool_limits(limits=settings.models.threads):
            res = run_models(s, settings, summary.run_id, started, progress)
            tables = _tables(res, settings, summary.run_id, started)
            s.write_many("analytics", tables)
    except PurchasePatternsError as exc:
        _log(settings, summary.run_id, "failed", started, None, str(exc))
        summary.errors.append(f"predict: {exc}")
        summary.exit_code = max(summary.exit_code, exc.exit_code)
        summary.stage("predict", "failed", str(exc), seconds=time.perf_counter() - t0)
        return
    overview = cards.write_report(res.cards, settings.reports_dir / summary.run_id)
    ran = [k for k, v in res.statuses.items() if v["status"] == "ran"]
    _log(settings, summary.run_id, "ran", started, len(tables["customer_predictions"]),
         f"models run: {', '.join(ran) or 'none'}")
    progress("predict done", 1.0)
    summary.stage("predict", "ran", seconds=time.perf_counter() - t0,
                  models={k: res.statuses[k] for k in MODELS if k in res.statuses},
                  customers_predicted=len(tables["customer_predictions"]),
                  model_cards=str(overview), **res.detail)


def _log(settings: Settings, run_id: str, status: str, started: datetime, rows: int | None,
         detail: str) -> None:
    with store(settings) as s:
        warehouse.log_stage(s, run_id, "predict", status, started, rows=rows, detail=detail)

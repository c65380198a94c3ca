"""Tests of the seeded synthetic purchase generator (``purchase_patterns.generate``)."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy.special import hyp2f1

from purchase_patterns.errors import UsageError
from purchase_patterns.generate import (
    BLOCK_CUSTOMERS,
    DATE_COLUMN,
    DEFAULT_PARAMS,
    MONTH_MULTIPLIERS,
    OUTPUT_COLUMNS,
    GenerationResult,
    generate,
    truth_path_for,
)
from purchase_patterns.schema import CATEGORY_ITEMS, KAGGLE_HEADERS_19, SEASONS, US_STATES

CUSTOMERS = 20_000
CUSTOMER_COLUMNS = (
    "Age", "Gender", "Location", "Subscription Status", "Previous Purchases",
    "Preferred Payment Method", "Frequency of Purchases",
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    out = tmp_path_factory.mktemp("gen") / "purchases.csv"
    return generate(out, CUSTOMERS, seed=7)


@pytest.fixture(scope="module")
def frame(generated: GenerationResult) -> pd.DataFrame:
    df = pd.read_csv(generated.path, dtype=str, keep_default_na=False)
    df["date"] = pd.to_datetime(df[DATE_COLUMN], format="%Y-%m-%d")
    return df


def test_rows_and_result(generated: GenerationResult, frame: pd.DataFrame) -> None:
    assert generated.customers == CUSTOMERS
    assert generated.rows == len(frame) > CUSTOMERS
    assert generated.truth_path == generated.path.with_name("purchases.truth.json")
    assert generated.seconds > 0
    ids = frame["Customer ID"].astype(np.int64)
    assert set(ids) == set(range(1, CUSTOMERS + 1))
    assert (np.diff(ids.to_numpy()) >= 0).all()  # grouped by customer, ascending ids
    # no temporary files left behind
    assert sorted(p.name for p in generated.path.parent.iterdir()) == [
        "purchases.csv", "purchases.truth.json",
    ]


def test_header(generated: GenerationResult) -> None:
    with generated.path.open(encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n")
    assert header.split(",") == [*KAGGLE_HEADERS_19, "Purchase Date"]
    assert tuple(header.split(",")) == OUTPUT_COLUMNS


def test_value_sets(frame: pd.DataFrame) -> None:
    assert set(frame["Size"]) == {"S", "M", "L", "XL"}
    assert frame["Color"].nunique() == 25
    assert set(frame["Subscription Status"]) | set(frame["Discount Applied"]) == {"Yes", "No"}
    assert not ((frame["Promo Code Used"] == "Yes") & (frame["Discount Applied"] == "No")).any()
    rating = frame["Review Rating"].astype(float)
    assert rating.between(2.5, 5.0).all()
    assert frame["Review Rating"].str.fullmatch(r"\d\.\d").all()
    age = frame["Age"].astype(int)
    assert age.between(18, 70).all()
    assert frame["Previous Purchases"].astype(int).between(0, 50).all()
    items = {it: cat for cat, its in CATEGORY_ITEMS.items() for it in its}
    assert (frame["Item Purchased"].map(items) == frame["Category"]).all()


def test_customer_attributes_constant(frame: pd.DataFrame) -> None:
    per_customer = frame.groupby("Customer ID")[list(CUSTOMER_COLUMNS)].nunique()
    assert (per_customer == 1).all().all()


def test_season_matches_date(frame: pd.DataFrame) -> None:
    expected = frame["date"].dt.month.map(lambda m: SEASONS[(m % 12) // 3])
    assert (expected == frame["Season"]).all()


def test_dates_amounts_states(frame: pd.DataFrame) -> None:
    assert frame["date"].min() >= pd.Timestamp("2023-01-01")
    assert frame["date"].max() <= pd.Timestamp("2025-12-31")
    assert frame[DATE_COLUMN].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    amount = frame["Purchase Amount (USD)"]
    assert amount.str.fullmatch(r"\d+\.\d{2}").all()
    assert (amount.astype(float) >= 1.0).all()
    assert set(frame["Location"]) <= set(US_STATES)
    assert frame["Location"].value_counts().index[0] == "California"


def test_dates_within_custom_window(tmp_path: Path) -> None:
    res = generate(tmp_path / "w.csv", 2_000, seed=3, start=date(2024, 2, 10),
                   end=date(2024, 5, 20))
    dates = pd.to_datetime(pd.read_csv(res.path, usecols=[DATE_COLUMN])[DATE_COLUMN])
    assert dates.min() >= pd.Timestamp("2024-02-10")
    assert dates.max() <= pd.Timestamp("2024-05-20")


def test_deterministic(tmp_path: Path) -> None:
    a = generate(tmp_path / "a.csv", 3_000, seed=11)
    b = generate(tmp_path / "b.csv", 3_000, seed=11)
    c = generate(tmp_path / "c.csv", 3_000, seed=12)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.path.read_bytes() != c.path.read_bytes()
    truth_a = json.loads(a.truth_path.read_text())
    truth_b = json.loads(b.truth_path.read_text())
    truth_a["data"].pop("file")
    truth_b["data"].pop("file")
    assert truth_a == truth_b


def test_csv_independent_of_chunking(tmp_path: Path) -> None:
    n = BLOCK_CUSTOMERS + 2_500
    whole = generate(tmp_path / "whole.csv", n, seed=5)
    seen: list[tuple[int, int]] = []
    pieces = generate(tmp_path / "pieces.csv", n, seed=5, chunk_customers=1,
                      progress=lambda done, total: seen.append((done, total)))
    assert whole.path.read_bytes() == pieces.path.read_bytes()
    assert seen == [(BLOCK_CUSTOMERS, n), (n, n)]


def test_gzip_deterministic(tmp_path: Path) -> None:
    a = generate(tmp_path / "a.csv.gz", 2_000, seed=1)
    b = generate(tmp_path / "b.csv.gz", 2_000, seed=1)
    plain = generate(tmp_path / "plain.csv", 2_000, seed=1)
    assert a.truth_path.name == "a.truth.json"
    assert a.path.read_bytes() == b.path.read_bytes()
    assert gzip.decompress(a.path.read_bytes()) == plain.path.read_bytes()


def test_truth_json(generated: GenerationResult) -> None:
    truth = json.loads(generated.truth_path.read_text(encoding="utf-8"))
    assert truth["params"]["bgnbd"] == {
        "r": DEFAULT_PARAMS.r, "alpha": DEFAULT_PARAMS.alpha,
        "a": DEFAULT_PARAMS.a, "b": DEFAULT_PARAMS.b,
    }
    assert set(truth["params"]["gamma_gamma"]) == {"p", "q", "gamma"}
    assert truth["seed"] == 7
    assert truth["start"] == "2023-01-01" and truth["end"] == "2025-12-31"
    assert truth["data"]["customers"] == CUSTOMERS
    assert truth["data"]["rows"] == generated.rows
    months = truth["seasonality"]["month_multipliers"]
    assert list(months.values()) == pytest.approx(list(MONTH_MULTIPLIERS))
    days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    assert np.dot(list(months.values()), days) / 365 == pytest.approx(1.0)
    assert truth["description"]


def test_parquet_matches_csv(tmp_path: Path) -> None:
    csv = generate(tmp_path / "x.csv", 3_000, seed=9)
    par = generate(tmp_path / "x.parquet", 3_000, seed=9)
    assert par.rows == csv.rows
    assert csv.truth_path == par.truth_path == tmp_path / "x.truth.json"
    a = pd.read_csv(csv.path, dtype=str, keep_default_na=False)
    b = pq.read_table(par.path).to_pandas()
    assert list(b.columns) == list(OUTPUT_COLUMNS)
    assert len(a) == len(b)
    for col in OUTPUT_COLUMNS:
        if col in ("Purchase Amount (USD)", "Review Rating"):
            np.testing.assert_allclose(a[col].astype(float), b[col].astype(float))
        else:
            assert (a[col] == b[col].astype(str)).all(), col


def test_holiday_peak(frame: pd.DataFrame) -> None:
    month = frame["date"].dt.month
    per_day = frame.groupby(month).size() / frame.groupby(month)["date"].nunique()
    assert per_day[11] > 1.2 * per_day[2]
    assert per_day[12] > 1.2 * per_day[2]
    assert per_day[7] > per_day[2]


def test_seasonal_categories(frame: pd.DataFrame) -> None:
    share = pd.crosstab(frame["Season"], frame["Category"], normalize="index")
    assert share.loc["Winter", "Outerwear"] > 3 * share.loc["Summer", "Outerwear"]
    items = pd.crosstab(frame["Season"], frame["Item Purchased"], normalize="index")
    assert items.loc["Summer", "Sandals"] > 3 * items.loc["Winter", "Sandals"]
    assert items.loc["Summer", "Shorts"] > 3 * items.loc["Winter", "Shorts"]


def _expected_repeats(t_weeks: np.ndarray) -> np.ndarray:
    """BG/NBD E[X(t)] (Fader, Hardie & Lee 2005, eq. 9) at the default true parameters."""
    r, alpha, a, b = DEFAULT_PARAMS.r, DEFAULT_PARAMS.alpha, DEFAULT_PARAMS.a, DEFAULT_PARAMS.b
    z = t_weeks / (alpha + t_weeks)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t_weeks)) ** r * hyp2f1(r, b, a + b - 1, z))


def test_purchase_counts_match_truth(frame: pd.DataFrame) -> None:
    per_customer = frame.groupby("Customer ID").size()
    horizon_days = (date(2025, 12, 31) - date(2023, 1, 1)).days + 1
    # birth uniform over the first 2/3: average E[1 + X(T - birth)] over birth
    birth = (np.arange(1000) + 0.5) / 1000 * DEFAULT_PARAMS.birth_fraction * horizon_days
    expected = 1 + _expected_repeats((horizon_days - birth) / 7.0).mean()
    assert 3.0 < expected < 8.0  # "a handful" of purchases per customer
    assert per_customer.mean() == pytest.approx(expected, rel=0.08)
    assert (per_customer == 1).mean() > 0.1
    # spend: Gamma-Gamma mean p * gamma / (q - 1), category factors average to 1
    p, q, gamma = DEFAULT_PARAMS.p, DEFAULT_PARAMS.q, DEFAULT_PARAMS.gamma
    spend = frame["Purchase Amount (USD)"].astype(float)
    assert spend.mean() == pytest.approx(p * gamma / (q - 1), rel=0.08)
    # stated cadence loosely follows the true rate
    by_freq = per_customer.groupby(
        frame.groupby("Customer ID")["Frequency of Purchases"].first()
    ).mean()
    assert by_freq["Weekly"] > by_freq["Monthly"] > by_freq["Annually"]


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        generate(tmp_path / "x.txt", 10)
    with pytest.raises(UsageError):
        generate(tmp_path / "x.parquet.gz", 10)
    with pytest.raises(UsageError):
        generate(tmp_path / "x.csv", 0)
    with pytest.raises(UsageError):
        generate(tmp_path / "x.csv", 10, start=date(2024, 1, 1), end=date(2024, 1, 1))
    assert list(tmp_path.iterdir()) == []
    res = generate(tmp_path / "x.data", 10, fmt="parquet")
    assert pq.read_table(res.path).num_rows == res.rows
    assert res.truth_path == tmp_path / "x.data.truth.json"


def test_truth_path_for() -> None:
    assert truth_path_for("d/p.csv.gz") == Path("d/p.truth.json")
    assert truth_path_for("d/p.parquet") == Path("d/p.truth.json")
    assert truth_path_for("d/p.v2.csv") == Path("d/p.v2.truth.json")

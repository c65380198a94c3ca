"""Report and dashboard filters: parsing, validation against the data, and the WHERE clause
checked against counts computed independently from the source files."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from helpers import FULL_STAGES, read_cdnow

from purchase_patterns.datastore import store
from purchase_patterns.errors import UsageError
from purchase_patterns.filters import (
    FILTER_KEYS,
    Filters,
    from_mapping,
    parse_filters,
    purchase_lines,
    validate_filters,
)
from purchase_patterns.settings import load_settings

BUILT = FULL_STAGES


def test_parse_normalises_values_and_ors_repeated_keys():
    flt = parse_filters(["state=ca", "category=Footwear", "season=winter", "category=Clothing",
                         "subscription=No", "Age-Band=65+", "segment=Frequent, high spend"])
    assert flt.as_dict() == {"season": ["Winter"], "category": ["Clothing", "Footwear"],
                             "state": ["California"], "age_band": ["65+"],
                             "segment": ["Frequent, high spend"], "subscription": False}
    assert flt.get("category") == ("Clothing", "Footwear") and flt.needs_segments
    source, params = purchase_lines(_FakeStore(), flt)
    assert "p.category_name in (@category_0, @category_1)" in source
    assert "c.state_name in (@state_0)" in source and "c.has_subscription = @subscription" in source
    assert " inner join \"analytics\".\"customer_segments\" as s" in source
    assert params["category_1"] == "Footwear" and params["subscription"] is False
    assert "California" not in source  # values are bound, never in the SQL text
    assert flt.describe() == ["Season: Winter", "Category: Clothing, Footwear",
                              "State: California", "Age band: 65+",
                              "Segment: Frequent, high spend", "Subscription: not subscribed"]
    assert parse_filters(flt.as_items()) == flt  # the report's syntax, both ways
    assert not Filters() and purchase_lines(_FakeStore(), Filters())[1] == {}


class _FakeStore:
    """Only names relations, as a store does; enough to build SQL text without a database."""

    def relation(self, layer: str, table: str) -> str:
        return f'"{layer}"."{table}"'

    def has_table(self, layer: str, table: str) -> bool:
        return True


@pytest.mark.parametrize(("args", "message"), [
    (["colour=red"], "unknown filter key 'colour'"),
    (["season"], "is not KEY=VALUE"),
    (["season=Monsoon"], "season=Monsoon: unknown value; use one of: Winter"),
    (["state=Atlantis"], "state=Atlantis: unknown value"),
    (["subscription=maybe"], "use yes or no"),
    (["date_from=2024-02-30"], "not a date"),
    (["date_from=2024-01-01", "date_from=2024-02-01"], "may be given once"),
    (["date_from=2024-03-01", "date_to=2024-01-01"], "is after date_to"),
    (["gender="], "empty value"),
])
def test_bad_filters_are_one_line_usage_errors(args, message):
    with pytest.raises(UsageError, match=message) as exc:
        parse_filters(args)
    assert "\n" not in str(exc.value) and exc.value.exit_code == 2


def test_from_mapping_is_the_same_model_as_the_cli():
    assert from_mapping({"state": "TX", "gender": ["female"]}) == parse_filters(
        ["gender=Female", "state=Texas"])
    with pytest.raises(UsageError, match="unknown filter key 'region'"):
        from_mapping({"region": "West"})
    assert Filters.from_mapping({"season": ["summer", "Winter"]}) == Filters(
        season=("Summer", "Winter"))
    assert set(FILTER_KEYS) == {"season", "category", "state", "census_region", "gender",
                                "age_band", "segment", "subscription", "date_from", "date_to"}


def _count(home, flt: Filters) -> tuple[int, float]:
    with store(load_settings(home=home), read_only=True) as s:
        source, params = purchase_lines(s, flt)
        row = s.query(f"select count(*) as n, sum(f.amount) as revenue from {source}",
                      params).iloc[0]
    return int(row["n"]), float(row["revenue"] or 0)


def test_where_clause_matches_the_kaggle_file(built_home, kaggle_csv):
    home = built_home("kaggle", BUILT)
    raw = pd.read_csv(kaggle_csv)
    with store(load_settings(home=home), read_only=True) as s:
        flt = validate_filters(s, parse_filters(
            ["state=CA", "category=footwear", "category=Clothing", "subscription=no"]),
            dated=False)
    assert flt.get("category") == ("Clothing", "Footwear")  # spelled as in the data
    want = raw[(raw["Location"] == "California") & raw["Category"].isin(["Footwear", "Clothing"])
               & (raw["Subscription Status"] == "No")]
    n, revenue = _count(home, flt)
    assert (n, revenue) == (len(want), float(want["Purchase Amount (USD)"].sum()))
    assert n > 0
    season = raw[raw["Season"].isin(["Winter", "Summer"]) & (raw["Gender"] == "Female")]
    assert _count(home, parse_filters(["season=Winter", "season=summer", "gender=female"]))[0] \
        == len(season)


def test_data_dependent_values_are_checked(built_home):
    home = built_home("kaggle", BUILT)
    with store(load_settings(home=home), read_only=True) as s:
        with pytest.raises(UsageError, match="category=Toys: unknown value; use one of: "
                                             "Accessories, Clothing, Footwear, Outerwear"):
            validate_filters(s, parse_filters(["category=Toys"]), dated=False)
        with pytest.raises(UsageError, match="date_from: this data has no purchase dates"):
            validate_filters(s, parse_filters(["date_from=2024-01-01"]), dated=False)
        seg = validate_filters(s, parse_filters(["segment=frequent, high spend"]), dated=False)
        assert seg.get("segment") == ("Frequent, high spend",) and seg.needs_segments
        with pytest.raises(UsageError, match="segment=Champions: unknown value"):
            validate_filters(s, parse_filters(["segment=Champions"]), dated=False)
    n_seg, _ = _count(home, seg)
    assert 0 < n_seg < 3900


def test_date_filters_match_the_cdnow_log(built_home, cdnow_master):
    home = built_home("cdnow_master", BUILT)
    raw = read_cdnow(cdnow_master)
    want = raw[(raw["date"] >= date(1997, 3, 1)) & (raw["date"] <= date(1997, 6, 30))]
    with store(load_settings(home=home), read_only=True) as s:
        flt = validate_filters(s, parse_filters(["date_from=1997-03-01", "date_to=1997-06-30"]),
                               dated=True)
    n, revenue = _count(home, flt)
    assert n == len(want)
    assert revenue == pytest.approx(float(want["amount"].sum()), abs=0.01)

"""Filters: the model normalises and parses selections; the SQL scopes select exactly what a
hand-written query selects on the real Kaggle warehouse, with every value a parameter."""

from __future__ import annotations

from datetime import date

import pytest
from helpers import scalar

from purchase_patterns.datastore import store
from purchase_patterns.errors import UsageError
from purchase_patterns.filters import Filters, customer_scope, purchase_scope
from purchase_patterns.settings import load_settings

HOSTILE = "'; drop table marts.fct_purchases; --"


def test_selection_is_normalised_and_described():
    a = Filters(season=["Winter", "Fall", "Winter"], state="Texas", subscription=False)
    b = Filters(season=("Fall", "Winter"), state=("Texas",), subscription=False)
    assert a == b and hash(a) == hash(b)
    assert a.on_customers and a.on_purchases and not a.is_empty
    assert Filters().is_empty
    assert a.describe() == ["Season: Fall, Winter", "State: Texas",
                            "Subscription: not subscribed"]
    assert a.as_dict() == {"season": ["Fall", "Winter"], "state": ["Texas"],
                           "subscription": False}


def test_parse_command_line_items():
    f = Filters.parse(["season=Winter", "season=summer", "state=Texas", "state=OH",
                       "subscription=yes", "date_from=2024-01-01"])
    assert f == Filters(season=("Summer", "Winter"), state=("Ohio", "Texas"),
                        subscription=True, date_from=date(2024, 1, 1))
    assert Filters.parse(f.as_items()) == f  # the report command's syntax, both ways
    assert f.as_items() == ["season=Summer", "season=Winter", "state=Ohio", "state=Texas",
                            "subscription=yes", "date_from=2024-01-01"]
    with pytest.raises(UsageError, match="unknown filter"):
        Filters.parse(["colour=red"])
    with pytest.raises(UsageError, match="KEY=VALUE"):
        Filters.parse(["Winter"])
    with pytest.raises(UsageError, match="yes or no"):
        Filters.parse(["subscription=maybe"])
    with pytest.raises(UsageError, match="a date like"):
        Filters.parse(["date_to=yesterday"])
    with pytest.raises(UsageError, match="after"):
        Filters(date_from=date(2024, 2, 1), date_to=date(2024, 1, 1))


def test_values_are_parameters_never_sql_text(built_home):
    settings = load_settings(home=built_home("kaggle"))
    with store(settings, read_only=True) as s:
        f = Filters(state=(HOSTILE,), category=("Footwear",), season=("Winter",))
        scope = purchase_scope(s, f)
        assert HOSTILE not in scope.sql and HOSTILE in scope.params.values()
        assert "@state_0" in scope.sql and "@category_0" in scope.sql
        n = s.query(f"select count(*) as n {scope.sql}", scope.params)["n"].iloc[0]
        assert n == 0
        cscope = customer_scope(s, f)
        assert HOSTILE not in cscope.sql
        assert s.query(f"select count(*) as n {cscope.sql}", cscope.params)["n"].iloc[0] == 0
    assert scalar(settings.warehouse_path, "select count(*) from marts.fct_purchases") == 3900


def test_scopes_match_hand_written_sql(built_home):
    settings = load_settings(home=built_home("kaggle"))
    db = settings.warehouse_path
    f = Filters(category=("Footwear", "Outerwear"), gender=("Female",),
                census_region=("South", "West"), subscription=False)
    expected_lines = scalar(db, """
        select count(*) from marts.fct_purchases f
        join marts.dim_products p on p.product_id = f.product_id
        join marts.dim_customers c on c.customer_id = f.customer_id
        where p.category_name in ('Footwear', 'Outerwear') and c.gender = 'Female'
          and c.census_region in ('South', 'West') and not c.has_subscription""")
    assert expected_lines > 0
    with store(settings, read_only=True) as s:
        scope = purchase_scope(s, f)
        assert s.query(f"select count(*) as n {scope.sql}", scope.params)["n"].iloc[0] \
            == expected_lines
        cscope = customer_scope(s, f, table="customer_features")
        customers = s.query(f"select count(*) as n {cscope.sql}", cscope.params)["n"].iloc[0]
    # one purchase per customer in this file: customers in scope = lines in scope
    assert customers == expected_lines


def test_segment_filter_needs_the_segments_table(built_home):
    settings = load_settings(home=built_home("kaggle"))
    with store(settings, read_only=True) as s, pytest.raises(UsageError, match="analyze"):
        purchase_scope(s, Filters(segment=("Champions",)))

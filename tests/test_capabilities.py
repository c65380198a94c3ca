"""What the data supports: decided from the marts, with a reason for every analysis."""

from __future__ import annotations

from purchase_patterns.capabilities import decide, profile, supported
from purchase_patterns.datastore import store
from purchase_patterns.predict import data
from purchase_patterns.settings import load_settings


def _decisions(home):
    with store(load_settings(home=home), read_only=True) as s:
        p = profile(s)
    return p, {d.analysis: d for d in decide(p)}


def test_whole_period_btyd_inputs_need_dates(built_home):
    with store(load_settings(home=built_home("kaggle")), read_only=True) as s:
        assert data.btyd_counts(s, profile(s)) is None
    with store(load_settings(home=built_home("cdnow_master")), read_only=True) as s:
        assert data.btyd_counts(s, profile(s))[3].sum() == 23570


def test_kaggle_snapshot_supports_no_date_analyses(built_home):
    p, d = _decisions(built_home("kaggle"))
    assert (p.dated, p.n_customers, p.n_purchases, p.span_days) == (False, 3900, 3900, 0)
    assert (p.n_subscribed, p.n_not_subscribed) == (1053, 2847)
    for name in ("rfm_segments", "calendar_trends", "cohort_retention", "growth",
                 "clv_bgnbd_gamma_gamma", "churn_classifier", "item_pair_affinity"):
        assert not d[name].supported, name
        assert "no purchase dates" in d[name].reason
    for name in ("eda", "snapshot_segments", "clustering", "seasonal_trends", "geography",
                 "attribute_affinity", "clv_heuristic", "subscription_propensity"):
        assert d[name].supported, (name, d[name].reason)


def test_cdnow_log_supports_btyd_but_not_snapshot_analyses(built_home):
    p, d = _decisions(built_home("cdnow_master"))
    assert p.dated and p.n_customers == 23570
    assert str(p.first_date) == "1997-01-01" and str(p.last_date) == "1998-06-30"
    assert p.n_repeat_customers > 10_000
    for name in ("rfm_segments", "calendar_trends", "cohort_retention", "growth",
                 "clv_bgnbd_gamma_gamma", "churn_classifier"):
        assert d[name].supported, (name, d[name].reason)
    assert not d["snapshot_segments"].supported
    assert not d["clv_heuristic"].supported
    assert not d["geography"].supported and not d["subscription_propensity"].supported
    assert supported(decide(p), "eda").supported


def test_multi_item_occasions_are_counted_over_every_line(built_home):
    """The profile looks only at customers with more lines than occasions; the count is the
    one a plain group-by over every dated line gives."""
    home = built_home("synthetic")
    p, d = _decisions(home)
    with store(load_settings(home=home), read_only=True) as s:
        fct, products = s.relation("marts", "fct_purchases"), s.relation("marts", "dim_products")
        n = int(s.query(
            f"""select count(*) as n from (
                    select f.customer_id, f.purchase_date from {fct} as f
                    join {products} as p on p.product_id = f.product_id
                    where f.purchase_date is not null and not p.is_unknown_product
                    group by 1, 2 having count(distinct f.product_id) > 1) as o"""  # noqa: S608
        ).iloc[0]["n"])
    assert n > 0 and p.n_multi_item_occasions == n

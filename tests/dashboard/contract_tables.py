"""Small ``analytics.*`` tables that follow the contract in docs/architecture.md, computed
from a real warehouse's marts with plain SQL.

They are test data made here (the analyze and predict stages are built elsewhere): crude
quintile scores and made-up but deterministic CLV figures, with exactly the columns the
contract names, so the dashboard's pages can be tested with the tables present. They are
not a model of anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from purchase_patterns import capabilities
from purchase_patterns.datastore import DuckDBStore

RUN_ID = "test-contract-run"


def write_contract_tables(db: Path) -> None:
    """Create every analytics table the dashboard reads in the warehouse file ``db``."""
    con = duckdb.connect(str(db))
    try:
        con.execute("create schema if not exists analytics")
        dated = con.execute(
            "select count(purchase_date) > 0 from marts.fct_purchases").fetchone()[0]
        _segments(con, dated)
        _predictions(con, dated)
        _models(con, dated)
        _trends(con, dated)
        _affinity(con)
        _recommendations(con)
        _analyses(con)
    finally:
        con.close()


def _segments(con: duckdb.DuckDBPyConnection, dated: bool) -> None:
    if dated:
        con.execute(f"""
            create or replace table analytics.customer_segments as
            with scored as (
                select customer_id,
                       ntile(5) over (order by days_since_last_purchase desc, customer_id) as r_score,
                       ntile(5) over (order by frequency, customer_id) as f_score,
                       ntile(5) over (order by monetary_value, customer_id) as m_score
                from marts.customer_features)
            select customer_id, 'rfm' as scheme,
                   case when r_score >= 4 and f_score >= 4 then 'Champions'
                        when r_score >= 3 and f_score >= 3 then 'Loyal'
                        when r_score <= 2 and f_score >= 3 then 'At risk'
                        when r_score >= 4 then 'New'
                        else 'Hibernating' end as segment,
                   r_score, f_score, m_score,
                   f_score % 3 as cluster_id, 'cluster ' || (f_score % 3) as cluster_label,
                   '{RUN_ID}' as run_id
            from scored""")
    else:
        con.execute(f"""
            create or replace table analytics.customer_segments as
            with scored as (
                select customer_id,
                       ntile(3) over (order by stated_previous_purchases, customer_id) as f_score,
                       ntile(3) over (order by monetary_value, customer_id) as m_score
                from marts.customer_features)
            select customer_id, 'snapshot_frequency_monetary' as scheme,
                   case when f_score = 3 and m_score = 3 then 'Loyal big spenders'
                        when f_score = 3 then 'Loyal'
                        when m_score = 3 then 'Big spenders'
                        else 'Occasional' end as segment,
                   cast(null as integer) as r_score, f_score, m_score,
                   m_score % 2 as cluster_id, 'cluster ' || (m_score % 2) as cluster_label,
                   '{RUN_ID}' as run_id
            from scored""")


def _predictions(con: duckdb.DuckDBPyConnection, dated: bool) -> None:
    if dated:
        con.execute(f"""
            create or replace table analytics.customer_predictions as
            select customer_id, 'bgnbd_gamma_gamma' as clv_method,
                   (frequency + 1) * exp(-days_since_last_purchase / 365.0) as expected_purchases,
                   exp(-days_since_last_purchase / 365.0) as p_alive,
                   monetary_value as expected_avg_spend,
                   (frequency + 1) * exp(-days_since_last_purchase / 365.0) * monetary_value
                       as clv,
                   1 - exp(-days_since_last_purchase / 365.0) as churn_probability,
                   12 as horizon_months, 'test-1' as model_version, '{RUN_ID}' as run_id
            from marts.customer_features""")
    else:
        con.execute(f"""
            create or replace table analytics.customer_predictions as
            select customer_id, 'heuristic_snapshot' as clv_method,
                   stated_purchases_per_year as expected_purchases,
                   cast(null as double) as p_alive, monetary_value as expected_avg_spend,
                   stated_purchases_per_year * monetary_value as clv,
                   cast(null as double) as churn_probability,
                   12 as horizon_months, 'test-1' as model_version, '{RUN_ID}' as run_id
            from marts.customer_features""")


def _models(con: duckdb.DuckDBPyConnection, dated: bool) -> None:
    model = "bgnbd_gamma_gamma" if dated else "heuristic_snapshot"
    card = {"data": "test warehouse", "split": "calibration/holdout" if dated else "none",
            "metrics": {"mae": 1.5}, "baselines": {"mae": 2.0},
            "caveats": ["test data written by the dashboard tests"]}
    con.execute("create or replace table analytics.model_cards (model varchar, title varchar, "
                "card_json varchar, run_id varchar, created_at timestamp)")
    con.execute("insert into analytics.model_cards values (?, ?, ?, ?, current_timestamp)",
                [model, f"CLV ({model})", json.dumps(card), RUN_ID])
    con.execute("create or replace table analytics.model_metrics (model varchar, metric "
                "varchar, value double, baseline varchar, baseline_value double, run_id varchar)")
    con.executemany("insert into analytics.model_metrics values (?, ?, ?, ?, ?, ?)", [
        [model, "mae_purchases", 1.5, "mean", 2.0, RUN_ID],
        [model, "spearman", 0.6, "recency only", 0.4, RUN_ID],
    ])


def _trends(con: duckdb.DuckDBPyConnection, dated: bool) -> None:
    month = """
        union all
        select 'month', strftime(purchase_month, '%Y-%m'), purchase_month, revenue,
               n_purchases,
               revenue = max(revenue) over () as is_peak, 'max' as peak_method
        from marts.agg_sales_by_month""" if dated else ""
    con.execute(f"""
        create or replace table analytics.trend_periods as
        select 'season' as grain, season as period, cast(null as date) as period_start,
               revenue, n_purchases as purchases,
               revenue = max(revenue) over () as is_peak, 'max' as peak_method
        from marts.agg_sales_by_season {month}""")


def _affinity(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        create or replace table analytics.affinity as
        with lines as (
            select 'category=' || p.category_name as a, 'season=' || f.season as b
            from marts.fct_purchases f join marts.dim_products p using (product_id)
            where f.season is not null),
        n as (select count(*) as total from lines),
        pairs as (select a, b, count(*) as n from lines group by a, b),
        ca as (select a, count(*) as na from lines group by a),
        cb as (select b, count(*) as nb from lines group by b)
        select 'attribute' as kind, pairs.a as antecedent, pairs.b as consequent,
               pairs.n / n.total as support, pairs.n / ca.na as confidence,
               (pairs.n / ca.na) / (cb.nb / n.total) as lift, pairs.n as n
        from pairs join ca using (a) join cb using (b) cross join n""")


def _recommendations(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        create or replace table analytics.recommendations as
        select row_number() over (order by customers desc, segment) as rank,
               'Win back ' || segment as title, 'email the segment' as action,
               'largest segment' as rationale, segment, customers,
               revenue as revenue_at_stake, cast(null as double) as clv_at_stake,
               '{}' as evidence_json
        from (select s.segment, count(*) as customers, sum(c.total_spend) as revenue
              from analytics.customer_segments s
              join marts.customer_features c using (customer_id) group by s.segment)""")
    con.execute(f"""
        create or replace table analytics.segment_summary as
        select s.scheme, s.segment, count(*) as customers, sum(c.total_spend) as revenue,
               sum(c.total_spend) / sum(sum(c.total_spend)) over () as revenue_share,
               avg(p.clv) as avg_clv, 'test segment ' || s.segment as description,
               '{RUN_ID}' as run_id
        from analytics.customer_segments s
        join marts.customer_features c using (customer_id)
        left join analytics.customer_predictions p using (customer_id)
        group by s.scheme, s.segment""")


def _analyses(con: duckdb.DuckDBPyConnection) -> None:
    decisions = capabilities.decide(capabilities.profile(DuckDBStore(con, read_only=False)))
    con.execute("create or replace table analytics.analyses (analysis varchar, stage varchar, "
                "status varchar, reason varchar, run_id varchar)")
    con.executemany("insert into analytics.analyses values (?, 'analyze', ?, ?, ?)", [
        [d.analysis, "ran" if d.supported else "skipped", d.reason, RUN_ID] for d in decisions])

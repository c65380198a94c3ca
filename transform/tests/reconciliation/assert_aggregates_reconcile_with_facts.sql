-- Every aggregate that partitions all purchases adds up to the purchases and revenue of
-- fct_purchases (per lever for agg_promotion_effects).
{{ config(severity='error', tags=['reconciliation']) }}

with

facts as (

    select
        count(*) as n_purchases,
        cast(coalesce(sum(amount), 0) as {{ type_money() }}) as revenue

    from {{ ref('fct_purchases') }}

),

aggregate_totals as (

    select 'agg_sales_by_season' as aggregate_name, sum(n_purchases) as n_purchases, sum(revenue) as revenue
    from {{ ref('agg_sales_by_season') }}

    union all

    select 'agg_category_performance' as aggregate_name, sum(n_purchases) as n_purchases, sum(revenue) as revenue
    from {{ ref('agg_category_performance') }}

    union all

    select 'agg_item_performance' as aggregate_name, sum(n_purchases) as n_purchases, sum(revenue) as revenue
    from {{ ref('agg_item_performance') }}

    union all

    select 'agg_sales_by_state' as aggregate_name, sum(n_purchases) as n_purchases, sum(revenue) as revenue
    from {{ ref('agg_sales_by_state') }}

    union all

    select 'agg_sales_by_region' as aggregate_name, sum(n_purchases) as n_purchases, sum(revenue) as revenue
    from {{ ref('agg_sales_by_region') }}

    union all

    select
        'agg_promotion_effects: ' || promotion_lever as aggregate_name,
        sum(n_purchases) as n_purchases,
        sum(revenue) as revenue
    from {{ ref('agg_promotion_effects') }}
    group by promotion_lever

    union all

    select 'dim_customers' as aggregate_name, sum(n_purchases) as n_purchases, sum(total_spend) as revenue
    from {{ ref('dim_customers') }}

),

mismatches as (

    select
        aggregate_totals.aggregate_name,
        aggregate_totals.n_purchases as aggregate_purchases,
        facts.n_purchases as fact_purchases,
        cast(aggregate_totals.revenue as {{ type_money() }}) as aggregate_revenue,
        facts.revenue as fact_revenue

    from aggregate_totals

    cross join facts

    where
        aggregate_totals.n_purchases <> facts.n_purchases
        or cast(aggregate_totals.revenue as {{ type_money() }}) <> facts.revenue

)

select * from mismatches

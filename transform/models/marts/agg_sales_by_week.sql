{{ config(enabled=var('dated', true)) }}

with

purchases as (

    select * from {{ ref('int_purchases_enriched') }}

),

dated_purchases as (

    select *

    from purchases

    where purchase_date is not null

),

weeks as (

    select
        purchase_week,
        count(*) as n_purchases,
        count(distinct customer_id) as n_customers,
        sum(quantity) as units,
        sum(amount) as revenue,
        avg(cast(amount as {{ type_double() }})) as avg_spend

    from dated_purchases

    group by 1

),

final as (

    select
        purchase_week as week_start,
        cast(n_purchases as {{ dbt.type_bigint() }}) as n_purchases,
        cast(n_customers as {{ dbt.type_bigint() }}) as n_customers,
        cast(units as {{ dbt.type_bigint() }}) as units,
        cast(revenue as {{ type_money() }}) as revenue,
        cast(avg_spend as {{ type_double() }}) as avg_spend

    from weeks

)

select * from final

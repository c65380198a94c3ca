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

first_purchase_months as (

    select
        customer_id,
        min(purchase_month) as first_purchase_month

    from dated_purchases

    group by 1

),

new_customers as (

    select
        first_purchase_month as purchase_month,
        count(*) as n_new_customers

    from first_purchase_months

    group by 1

),

months as (

    select
        purchase_month,
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
        months.purchase_month,
        cast(extract(year from months.purchase_month) as {{ dbt.type_bigint() }}) as purchase_year,
        cast(extract(month from months.purchase_month) as {{ dbt.type_bigint() }})
            as month_of_year,
        cast(months.n_purchases as {{ dbt.type_bigint() }}) as n_purchases,
        cast(months.n_customers as {{ dbt.type_bigint() }}) as n_customers,
        cast(coalesce(new_customers.n_new_customers, 0) as {{ dbt.type_bigint() }})
            as n_new_customers,
        cast(months.units as {{ dbt.type_bigint() }}) as units,
        cast(months.revenue as {{ type_money() }}) as revenue,
        cast(months.avg_spend as {{ type_double() }}) as avg_spend

    from months

    left join new_customers
        on months.purchase_month = new_customers.purchase_month

)

select * from final

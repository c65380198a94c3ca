{{ config(enabled=var('dated', true)) }}

-- Customers grouped by the month of their first purchase (cohort), and for every month since
-- then how many of them purchased again; months without any purchase are present with 0.

with

purchases as (

    select * from {{ ref('int_purchases_enriched') }}

),

customer_months as (

    select
        customer_id,
        purchase_month,
        sum(amount) as revenue

    from purchases

    where purchase_date is not null

    group by 1, 2

),

customer_cohorts as (

    select
        customer_id,
        min(purchase_month) as cohort_month

    from customer_months

    group by 1

),

cohort_sizes as (

    select
        cohort_month,
        count(*) as cohort_size

    from customer_cohorts

    group by 1

),

activity as (

    select
        customer_cohorts.cohort_month,
        {{ dbt.datediff('customer_cohorts.cohort_month', 'customer_months.purchase_month', 'month') }}
            as months_since_first_purchase,
        customer_months.customer_id,
        customer_months.revenue

    from customer_months

    inner join customer_cohorts
        on customer_months.customer_id = customer_cohorts.customer_id

),

cohort_activity as (

    select
        cohort_month,
        months_since_first_purchase,
        count(distinct customer_id) as n_active_customers,
        sum(revenue) as revenue

    from activity

    group by 1, 2

),

observation_end as (

    select max(purchase_month) as last_month

    from customer_months

),

month_offsets as (

    select distinct months_since_first_purchase

    from activity

),

cohort_grid as (

    select
        cohort_sizes.cohort_month,
        cohort_sizes.cohort_size,
        month_offsets.months_since_first_purchase

    from cohort_sizes

    cross join month_offsets

    cross join observation_end

    where month_offsets.months_since_first_purchase
        <= {{ dbt.datediff('cohort_sizes.cohort_month', 'observation_end.last_month', 'month') }}

),

final as (

    select
        cohort_grid.cohort_month,
        cast(cohort_grid.months_since_first_purchase as {{ dbt.type_bigint() }})
            as months_since_first_purchase,
        cast(
            {{ dbt.dateadd('month', 'cohort_grid.months_since_first_purchase', 'cohort_grid.cohort_month') }}
            as date
        ) as activity_month,
        cast(cohort_grid.cohort_size as {{ dbt.type_bigint() }}) as cohort_size,
        cast(coalesce(cohort_activity.n_active_customers, 0) as {{ dbt.type_bigint() }})
            as n_active_customers,
        {{ safe_divide('coalesce(cohort_activity.n_active_customers, 0)', 'cohort_grid.cohort_size') }}
            as retention_rate,
        cast(coalesce(cohort_activity.revenue, 0) as {{ type_money() }}) as revenue,
        {{ safe_divide('coalesce(cohort_activity.revenue, 0)', 'cohort_grid.cohort_size') }}
            as revenue_per_cohort_customer

    from cohort_grid

    left join cohort_activity
        on cohort_grid.cohort_month = cohort_activity.cohort_month
        and cohort_grid.months_since_first_purchase = cohort_activity.months_since_first_purchase

)

select * from final

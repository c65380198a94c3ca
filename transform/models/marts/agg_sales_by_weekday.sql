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

totals as (

    select
        count(*) as total_purchases,
        sum(amount) as total_revenue

    from dated_purchases

),

weekdays as (

    select
        purchase_day_of_week,
        count(*) as n_purchases,
        count(distinct customer_id) as n_customers,
        sum(amount) as revenue,
        avg(cast(amount as {{ type_double() }})) as avg_spend

    from dated_purchases

    group by 1

),

final as (

    select
        cast(weekdays.purchase_day_of_week as {{ dbt.type_bigint() }}) as day_of_week,
        case weekdays.purchase_day_of_week
            when 1 then 'Monday'
            when 2 then 'Tuesday'
            when 3 then 'Wednesday'
            when 4 then 'Thursday'
            when 5 then 'Friday'
            when 6 then 'Saturday'
            when 7 then 'Sunday'
        end as day_name,
        cast(weekdays.n_purchases as {{ dbt.type_bigint() }}) as n_purchases,
        cast(weekdays.n_customers as {{ dbt.type_bigint() }}) as n_customers,
        cast(weekdays.revenue as {{ type_money() }}) as revenue,
        cast(weekdays.avg_spend as {{ type_double() }}) as avg_spend,
        {{ safe_divide('weekdays.n_purchases', 'totals.total_purchases') }} as share_of_purchases,
        {{ safe_divide('weekdays.revenue', 'totals.total_revenue') }} as share_of_revenue

    from weekdays

    cross join totals

)

select * from final

with

purchases as (

    select * from {{ ref('int_purchases_enriched') }}

),

totals as (

    select sum(amount) as total_revenue

    from purchases

),

seasons as (

    select
        coalesce(season, 'Unknown') as season,
        count(*) as n_purchases,
        count(distinct customer_id) as n_customers,
        sum(quantity) as units,
        sum(amount) as revenue,
        avg(cast(amount as {{ type_double() }})) as avg_spend,
        avg(review_rating) as avg_review_rating

    from purchases

    group by 1

),

final as (

    select
        seasons.season,
        cast(case seasons.season
            when 'Winter' then 1
            when 'Spring' then 2
            when 'Summer' then 3
            when 'Fall' then 4
            else 5
        end as {{ dbt.type_bigint() }}) as season_order,
        cast(seasons.n_purchases as {{ dbt.type_bigint() }}) as n_purchases,
        cast(seasons.n_customers as {{ dbt.type_bigint() }}) as n_customers,
        cast(seasons.units as {{ dbt.type_bigint() }}) as units,
        cast(seasons.revenue as {{ type_money() }}) as revenue,
        cast(seasons.avg_spend as {{ type_double() }}) as avg_spend,
        cast(seasons.avg_review_rating as {{ type_double() }}) as avg_review_rating,
        {{ safe_divide('seasons.revenue', 'totals.total_revenue') }} as share_of_revenue

    from seasons

    cross join totals

)

select * from final

with

purchases as (

    select * from {{ ref('int_purchases_enriched') }}

),

us_states as (

    select * from {{ ref('us_states') }}

),

region_populations as (

    select
        census_region,
        count(*) as n_states,
        sum(population) as population

    from us_states

    group by 1

),

totals as (

    select sum(amount) as total_revenue

    from purchases

),

regions as (

    select
        coalesce(census_region, 'Unknown') as census_region,
        count(*) as n_purchases,
        count(distinct customer_id) as n_customers,
        sum(amount) as revenue,
        avg(cast(amount as {{ type_double() }})) as avg_spend

    from purchases

    group by 1

),

final as (

    select
        regions.census_region,
        cast(region_populations.n_states as {{ dbt.type_bigint() }}) as n_states,
        cast(region_populations.population as {{ dbt.type_bigint() }}) as population,
        cast(regions.n_purchases as {{ dbt.type_bigint() }}) as n_purchases,
        cast(regions.n_customers as {{ dbt.type_bigint() }}) as n_customers,
        cast(regions.revenue as {{ type_money() }}) as revenue,
        cast(regions.avg_spend as {{ type_double() }}) as avg_spend,
        {{ safe_divide('regions.revenue', 'totals.total_revenue') }} as share_of_revenue,
        100000 * {{ safe_divide('regions.revenue', 'region_populations.population') }}
            as revenue_per_100k_residents

    from regions

    cross join totals

    left join region_populations
        on regions.census_region = region_populations.census_region

)

select * from final

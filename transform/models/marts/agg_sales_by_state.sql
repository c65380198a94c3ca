with

purchases as (

    select * from {{ ref('int_purchases_enriched') }}

),

us_states as (

    select * from {{ ref('us_states') }}

),

states as (

    select
        coalesce(state_name, 'Unknown') as state_name,
        count(*) as n_purchases,
        count(distinct customer_id) as n_customers,
        sum(amount) as revenue,
        avg(cast(amount as {{ type_double() }})) as avg_spend

    from purchases

    group by 1

),

final as (

    select
        states.state_name,
        us_states.code as state_code,
        coalesce(us_states.census_region, 'Unknown') as census_region,
        coalesce(us_states.census_division, 'Unknown') as census_division,
        cast(us_states.population as {{ dbt.type_bigint() }}) as population,
        cast(states.n_purchases as {{ dbt.type_bigint() }}) as n_purchases,
        cast(states.n_customers as {{ dbt.type_bigint() }}) as n_customers,
        cast(states.revenue as {{ type_money() }}) as revenue,
        cast(states.avg_spend as {{ type_double() }}) as avg_spend,
        100000 * {{ safe_divide('states.revenue', 'us_states.population') }}
            as revenue_per_100k_residents,
        100000 * {{ safe_divide('states.n_customers', 'us_states.population') }}
            as customers_per_100k_residents

    from states

    left join us_states
        on states.state_name = us_states.state

)

select * from final

with

purchases as (

    select * from {{ ref('int_purchases_enriched') }}

),

totals as (

    select sum(amount) as total_revenue

    from purchases

),

categories as (

    select
        coalesce(category_name, 'Unknown') as category_name,
        count(*) as n_purchases,
        count(distinct customer_id) as n_customers,
        count(distinct product_id) as n_products,
        sum(quantity) as units,
        sum(amount) as revenue,
        avg(cast(amount as {{ type_double() }})) as avg_spend,
        avg(review_rating) as avg_review_rating,
        avg(case when is_discount_applied then 1.0 when not is_discount_applied then 0.0 end)
            as discount_rate

    from purchases

    group by 1

),

final as (

    select
        categories.category_name,
        cast(categories.n_purchases as {{ dbt.type_bigint() }}) as n_purchases,
        cast(categories.n_customers as {{ dbt.type_bigint() }}) as n_customers,
        cast(categories.n_products as {{ dbt.type_bigint() }}) as n_products,
        cast(categories.units as {{ dbt.type_bigint() }}) as units,
        cast(categories.revenue as {{ type_money() }}) as revenue,
        cast(categories.avg_spend as {{ type_double() }}) as avg_spend,
        cast(categories.avg_review_rating as {{ type_double() }}) as avg_review_rating,
        cast(categories.discount_rate as {{ type_double() }}) as discount_rate,
        {{ safe_divide('categories.revenue', 'totals.total_revenue') }} as share_of_revenue,
        cast(rank() over (order by categories.revenue desc) as {{ dbt.type_bigint() }})
            as revenue_rank

    from categories

    cross join totals

)

select * from final

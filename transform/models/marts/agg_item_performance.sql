with

purchases as (

    select * from {{ ref('int_purchases_enriched') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

items as (

    select
        product_id,
        count(*) as n_purchases,
        count(distinct customer_id) as n_customers,
        sum(quantity) as units,
        sum(amount) as revenue,
        avg(cast(amount as {{ type_double() }})) as avg_spend,
        avg(review_rating) as avg_review_rating

    from purchases

    group by 1

),

items_with_product as (

    select
        items.*,
        products.item_name,
        products.category_name

    from items

    inner join products
        on items.product_id = products.product_id

),

final as (

    select
        product_id,
        item_name,
        category_name,
        cast(n_purchases as {{ dbt.type_bigint() }}) as n_purchases,
        cast(n_customers as {{ dbt.type_bigint() }}) as n_customers,
        cast(units as {{ dbt.type_bigint() }}) as units,
        cast(revenue as {{ type_money() }}) as revenue,
        cast(avg_spend as {{ type_double() }}) as avg_spend,
        cast(avg_review_rating as {{ type_double() }}) as avg_review_rating,
        cast(rank() over (order by revenue desc) as {{ dbt.type_bigint() }}) as revenue_rank,
        cast(rank() over (partition by category_name order by revenue desc) as {{ dbt.type_bigint() }})
            as revenue_rank_in_category

    from items_with_product

)

select * from final

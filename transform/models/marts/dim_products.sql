with

purchases as (

    select * from {{ ref('int_purchases_enriched') }}

),

products as (

    select distinct
        product_id,
        item_name,
        category_name

    from purchases

),

final as (

    select
        product_id,
        coalesce(item_name, 'Unknown') as item_name,
        coalesce(category_name, 'Unknown') as category_name,
        item_name is null and category_name is null as is_unknown_product

    from products

)

select * from final

-- Purchases split by each promotion lever in turn (long format: one row per lever and value),
-- with the lift of mean spend over all purchases.

with

purchases as (

    select * from {{ ref('int_purchases_enriched') }}

),

overall as (

    select
        count(*) as total_purchases,
        avg(cast(amount as {{ type_double() }})) as overall_avg_spend

    from purchases

),

lever_values as (

    select
        'discount_applied' as promotion_lever,
        case
            when is_discount_applied then 'Yes'
            when not is_discount_applied then 'No'
            else 'Unknown'
        end as lever_value,
        customer_id,
        amount,
        review_rating
    from purchases

    union all

    select
        'promo_code_used' as promotion_lever,
        case
            when is_promo_code_used then 'Yes'
            when not is_promo_code_used then 'No'
            else 'Unknown'
        end as lever_value,
        customer_id,
        amount,
        review_rating
    from purchases

    union all

    select
        'subscription' as promotion_lever,
        case
            when has_subscription then 'Yes'
            when not has_subscription then 'No'
            else 'Unknown'
        end as lever_value,
        customer_id,
        amount,
        review_rating
    from purchases

    union all

    select
        'shipping_type' as promotion_lever,
        coalesce(shipping_type, 'Unknown') as lever_value,
        customer_id,
        amount,
        review_rating
    from purchases

),

effects as (

    select
        promotion_lever,
        lever_value,
        count(*) as n_purchases,
        count(distinct customer_id) as n_customers,
        sum(amount) as revenue,
        avg(cast(amount as {{ type_double() }})) as avg_spend,
        avg(review_rating) as avg_review_rating

    from lever_values

    group by 1, 2

),

final as (

    select
        effects.promotion_lever,
        effects.lever_value,
        cast(effects.n_purchases as {{ dbt.type_bigint() }}) as n_purchases,
        cast(effects.n_customers as {{ dbt.type_bigint() }}) as n_customers,
        cast(effects.revenue as {{ type_money() }}) as revenue,
        cast(effects.avg_spend as {{ type_double() }}) as avg_spend,
        cast(effects.avg_review_rating as {{ type_double() }}) as avg_review_rating,
        {{ safe_divide('effects.n_purchases', 'overall.total_purchases') }} as share_of_purchases,
        {{ safe_divide('effects.avg_spend', 'overall.overall_avg_spend') }} - 1 as avg_spend_lift

    from effects

    cross join overall

)

select * from final

-- One row per customer with the attributes stated on their most recent row: latest batch
-- (loaded_at) first, then the latest purchase date, then the last line of the file.

with

purchases as (

    select * from {{ ref('int_purchases_enriched') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by customer_id
            order by
                batch_loaded_at desc,
                batch_id desc,
                purchase_date desc nulls last,
                source_line desc
        ) as recency_rank

    from purchases

),

final as (

    select
        customer_id,
        age,
        age_band,
        gender,
        state_name,
        state_code,
        census_region,
        census_division,
        has_subscription,
        stated_previous_purchases,
        preferred_payment_method,
        stated_purchase_frequency,
        batch_id as attributes_batch_id,
        batch_loaded_at as attributes_loaded_at

    from ranked

    where recency_rank = 1

)

select * from final

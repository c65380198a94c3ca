-- On BigQuery the table is partitioned by month of purchase (when the data is dated) and
-- clustered by customer, so that date-bounded and per-customer queries scan less.
{{ config(
    partition_by=(
        {'field': 'purchase_date', 'data_type': 'date', 'granularity': 'month'}
        if target.type == 'bigquery' and var('dated', true) else none
    ),
    cluster_by=(['customer_id'] if target.type == 'bigquery' else none),
) }}

with

purchases as (

    select * from {{ ref('int_purchases_enriched') }}

),

final as (

    select
        ----------  keys
        purchase_id,
        customer_id,
        product_id,
        batch_id,
        source_line,

        ----------  when
        purchase_date,
        purchase_month,
        purchase_week,
        purchase_day_of_week,
        season,

        ----------  what
        amount,
        quantity,
        size,
        color,
        review_rating,
        payment_method,
        shipping_type,
        is_discount_applied,
        is_promo_code_used,

        ----------  where and who, as stated on the purchase line
        state_name,
        age_band

    from purchases

)

select * from final

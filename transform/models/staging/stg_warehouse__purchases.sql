with

source as (

    select * from {{ source('warehouse', 'purchases') }}

),

renamed as (

    select

        ----------  ids
        cast(purchase_id as {{ dbt.type_string() }}) as purchase_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(batch_id as {{ dbt.type_string() }}) as batch_id,
        cast(source_line as {{ dbt.type_bigint() }}) as source_line,

        ----------  purchase
        cast(purchase_date as date) as purchase_date,
        cast(season as {{ dbt.type_string() }}) as season,
        cast(item as {{ dbt.type_string() }}) as item_name,
        cast(category as {{ dbt.type_string() }}) as category_name,
        cast(size as {{ dbt.type_string() }}) as size,
        cast(color as {{ dbt.type_string() }}) as color,
        cast(payment_method as {{ dbt.type_string() }}) as payment_method,
        cast(shipping_type as {{ dbt.type_string() }}) as shipping_type,

        ----------  numerics
        cast(amount as {{ type_money() }}) as amount,
        cast(quantity as {{ dbt.type_bigint() }}) as quantity,
        cast(review_rating as {{ type_double() }}) as review_rating,

        ----------  booleans
        cast(discount_applied as {{ dbt.type_boolean() }}) as is_discount_applied,
        cast(promo_code_used as {{ dbt.type_boolean() }}) as is_promo_code_used,

        ----------  customer attributes as stated on the row
        cast(age as {{ dbt.type_bigint() }}) as age,
        cast(gender as {{ dbt.type_string() }}) as gender,
        cast(state as {{ dbt.type_string() }}) as state_name,
        cast(subscription_status as {{ dbt.type_boolean() }}) as has_subscription,
        cast(previous_purchases as {{ dbt.type_bigint() }}) as stated_previous_purchases,
        cast(preferred_payment_method as {{ dbt.type_string() }}) as preferred_payment_method,
        cast(purchase_frequency as {{ dbt.type_string() }}) as stated_purchase_frequency

    from source

)

select * from renamed

with

purchases as (

    select * from {{ ref('stg_warehouse__purchases') }}

),

batches as (

    select * from {{ ref('stg_warehouse__batches') }}

),

us_states as (

    select * from {{ ref('us_states') }}

),

purchases_with_batch as (

    select
        purchases.*,
        batches.loaded_at as batch_loaded_at

    from purchases

    left join batches
        on purchases.batch_id = batches.batch_id

),

purchases_with_state as (

    select
        purchases_with_batch.*,
        us_states.code as state_code,
        us_states.census_region,
        us_states.census_division

    from purchases_with_batch

    left join us_states
        on purchases_with_batch.state_name = us_states.state

),

final as (

    select
        *,

        {{ surrogate_key(['item_name', 'category_name']) }} as product_id,

        {{ age_band('age') }} as age_band,

        {{ month_start('purchase_date') }} as purchase_month,
        {{ week_start('purchase_date') }} as purchase_week,
        {{ day_of_week_iso('purchase_date') }} as purchase_day_of_week,

        -- a purchase occasion is a customer's purchase day; without dates every line is one
        case
            when purchase_date is null then purchase_id
            else cast(purchase_date as {{ dbt.type_string() }})
        end as purchase_occasion_key

    from purchases_with_state

)

select * from final

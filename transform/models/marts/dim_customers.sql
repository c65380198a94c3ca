-- Clustered by customer on BigQuery (per-customer lookups scan one block).
{{ config(cluster_by=(['customer_id'] if target.type == 'bigquery' else none)) }}

with

customers as (

    select * from {{ ref('int_customers_latest') }}

),

purchase_summary as (

    select * from {{ ref('int_customer_purchase_summary') }}

),

purchase_frequencies as (

    select * from {{ ref('purchase_frequencies') }}

),

customers_with_history as (

    select
        customers.*,
        purchase_summary.n_purchases,
        purchase_summary.total_spend,
        purchase_summary.first_purchase_date,
        purchase_summary.last_purchase_date,
        purchase_summary.t_days as tenure_days

    from customers

    inner join purchase_summary
        on customers.customer_id = purchase_summary.customer_id

),

final as (

    select
        customers_with_history.customer_id,
        customers_with_history.age,
        customers_with_history.age_band,
        customers_with_history.gender,
        customers_with_history.state_name,
        customers_with_history.state_code,
        customers_with_history.census_region,
        customers_with_history.census_division,
        customers_with_history.has_subscription,
        customers_with_history.preferred_payment_method,
        customers_with_history.stated_purchase_frequency,
        cast(purchase_frequencies.purchases_per_year as {{ type_double() }})
            as expected_purchases_per_year,
        customers_with_history.stated_previous_purchases,
        customers_with_history.first_purchase_date,
        customers_with_history.last_purchase_date,
        customers_with_history.tenure_days,
        customers_with_history.n_purchases,
        customers_with_history.total_spend,
        customers_with_history.attributes_batch_id,
        customers_with_history.attributes_loaded_at

    from customers_with_history

    left join purchase_frequencies
        on customers_with_history.stated_purchase_frequency = purchase_frequencies.stated_frequency

)

select * from final

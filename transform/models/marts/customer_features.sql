-- Clustered by customer on BigQuery (per-customer lookups scan one block).
{{ config(cluster_by=(['customer_id'] if target.type == 'bigquery' else none)) }}

-- One row per customer: the features the segmentation, CLV and churn models start from.

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

final as (

    select
        ----------  key
        customers.customer_id,

        ----------  recency, frequency, monetary (see int_customer_purchase_summary)
        purchase_summary.frequency,
        purchase_summary.recency_days,
        purchase_summary.t_days,
        purchase_summary.days_since_last_purchase,
        purchase_summary.monetary_value,
        purchase_summary.repeat_monetary_value,
        purchase_summary.total_spend,
        purchase_summary.n_purchases,
        purchase_summary.n_purchase_occasions,
        purchase_summary.first_purchase_date,
        purchase_summary.last_purchase_date,
        purchase_summary.as_of_date,

        ----------  stated behaviour
        customers.stated_purchase_frequency,
        cast(purchase_frequencies.purchases_per_year as {{ type_double() }})
            as stated_purchases_per_year,
        customers.stated_previous_purchases,
        customers.has_subscription,
        customers.preferred_payment_method,

        ----------  demographics
        customers.age,
        customers.age_band,
        customers.gender,
        customers.state_name,
        customers.census_region,
        customers.census_division

    from customers

    inner join purchase_summary
        on customers.customer_id = purchase_summary.customer_id

    left join purchase_frequencies
        on customers.stated_purchase_frequency = purchase_frequencies.stated_frequency

)

select * from final

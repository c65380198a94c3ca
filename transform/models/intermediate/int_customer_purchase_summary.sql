-- Purchase history per customer, with the recency-frequency-monetary summary used by
-- buy-till-you-die models (BG/NBD, Gamma-Gamma), measured in days as of the last purchase
-- date in the data:
--   frequency     repeat purchase occasions (occasions - 1)
--   recency_days  days from the first to the last purchase (t_x); NULL without dates
--   t_days        days from the first purchase to the end of the data (T); NULL without dates

with

occasions as (

    select * from {{ ref('int_purchase_occasions') }}

),

observation_end as (

    select max(purchase_date) as as_of_date

    from occasions

),

customer_occasions as (

    select
        customer_id,
        count(*) as n_purchase_occasions,
        sum(n_purchase_lines) as n_purchases,
        sum(occasion_spend) as total_spend,
        min(purchase_date) as first_purchase_date,
        max(purchase_date) as last_purchase_date,
        sum(case when purchase_date is not null and occasion_number > 1 then occasion_spend end)
            as repeat_spend

    from occasions

    group by 1

),

final as (

    select
        customer_occasions.customer_id,
        cast(customer_occasions.n_purchases as {{ dbt.type_bigint() }}) as n_purchases,
        cast(customer_occasions.n_purchase_occasions as {{ dbt.type_bigint() }})
            as n_purchase_occasions,
        cast(customer_occasions.n_purchase_occasions - 1 as {{ dbt.type_bigint() }}) as frequency,
        cast(customer_occasions.total_spend as {{ type_money() }}) as total_spend,
        {{ safe_divide('customer_occasions.total_spend', 'customer_occasions.n_purchase_occasions') }}
            as monetary_value,
        {{ safe_divide('customer_occasions.repeat_spend', 'customer_occasions.n_purchase_occasions - 1') }}
            as repeat_monetary_value,
        customer_occasions.first_purchase_date,
        customer_occasions.last_purchase_date,
        observation_end.as_of_date,
        {{ days_between('customer_occasions.first_purchase_date', 'customer_occasions.last_purchase_date') }}
            as recency_days,
        {{ days_between('customer_occasions.first_purchase_date', 'observation_end.as_of_date') }}
            as t_days,
        {{ days_between('customer_occasions.last_purchase_date', 'observation_end.as_of_date') }}
            as days_since_last_purchase

    from customer_occasions

    cross join observation_end

)

select * from final

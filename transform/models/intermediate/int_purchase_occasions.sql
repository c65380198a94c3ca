-- One row per purchase occasion: a customer's purchase day, or a purchase line when the data
-- has no dates. Several lines on the same day are one occasion (the convention of BG/NBD and
-- Gamma-Gamma models).

with

purchases as (

    select * from {{ ref('int_purchases_enriched') }}

),

occasions as (

    select
        customer_id,
        purchase_occasion_key,
        purchase_date,
        count(*) as n_purchase_lines,
        sum(amount) as occasion_spend

    from purchases

    group by 1, 2, 3

),

final as (

    select
        customer_id,
        purchase_occasion_key,
        purchase_date,
        cast(n_purchase_lines as {{ dbt.type_bigint() }}) as n_purchase_lines,
        cast(occasion_spend as {{ type_money() }}) as occasion_spend,
        row_number() over (
            partition by customer_id
            order by purchase_date, purchase_occasion_key
        ) as occasion_number

    from occasions

)

select * from final

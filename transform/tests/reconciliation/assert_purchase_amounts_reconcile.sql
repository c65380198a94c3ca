-- The total purchase amount in raw.purchases equals the total in fct_purchases to the cent.
{{ config(severity='error', tags=['reconciliation']) }}

with

raw_purchases as (

    select
        count(*) as n_rows,
        coalesce(sum(amount), 0) as total_amount

    from {{ source('warehouse', 'purchases') }}

),

fact_purchases as (

    select
        count(*) as n_rows,
        coalesce(sum(amount), 0) as total_amount

    from {{ ref('fct_purchases') }}

),

compared as (

    select
        cast(raw_purchases.total_amount as {{ type_money() }}) as raw_total_amount,
        cast(fact_purchases.total_amount as {{ type_money() }}) as fact_total_amount

    from raw_purchases

    cross join fact_purchases

),

mismatches as (

    select *

    from compared

    where raw_total_amount <> fact_total_amount

)

select * from mismatches

-- raw.purchases, the staging view and fct_purchases hold the same number of purchase lines.
{{ config(severity='error', tags=['reconciliation']) }}

with

raw_purchases as (

    select count(*) as n_rows from {{ source('warehouse', 'purchases') }}

),

staged_purchases as (

    select count(*) as n_rows from {{ ref('stg_warehouse__purchases') }}

),

fact_purchases as (

    select count(*) as n_rows from {{ ref('fct_purchases') }}

),

compared as (

    select
        raw_purchases.n_rows as raw_rows,
        staged_purchases.n_rows as staging_rows,
        fact_purchases.n_rows as fact_rows

    from raw_purchases

    cross join staged_purchases

    cross join fact_purchases

),

mismatches as (

    select *

    from compared

    where raw_rows <> staging_rows or raw_rows <> fact_rows

)

select * from mismatches

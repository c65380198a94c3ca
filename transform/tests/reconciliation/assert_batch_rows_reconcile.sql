-- For every batch: rows_in = rows_loaded + rows_rejected, rows_loaded is the number of rows
-- of the batch in raw.purchases, and rows_rejected the number of distinct rejected lines.
{{ config(severity='error', tags=['reconciliation']) }}

with

batches as (

    select * from {{ source('warehouse', 'batches') }}

),

loaded_rows as (

    select
        batch_id,
        count(*) as n_rows

    from {{ source('warehouse', 'purchases') }}

    group by 1

),

rejected_lines as (

    select
        batch_id,
        count(distinct line) as n_lines

    from {{ source('warehouse', 'rejects') }}

    group by 1

),

compared as (

    select
        batches.batch_id,
        batches.source_file,
        batches.rows_in,
        batches.rows_loaded,
        batches.rows_rejected,
        coalesce(loaded_rows.n_rows, 0) as rows_in_warehouse,
        coalesce(rejected_lines.n_lines, 0) as rejected_lines_in_warehouse

    from batches

    left join loaded_rows
        on batches.batch_id = loaded_rows.batch_id

    left join rejected_lines
        on batches.batch_id = rejected_lines.batch_id

),

mismatches as (

    select *

    from compared

    where
        rows_in <> rows_loaded + rows_rejected
        or rows_loaded <> rows_in_warehouse
        or rows_rejected <> rejected_lines_in_warehouse

)

select * from mismatches

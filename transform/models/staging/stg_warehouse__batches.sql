with

source as (

    select * from {{ source('warehouse', 'batches') }}

),

renamed as (

    select

        ----------  ids
        cast(batch_id as {{ dbt.type_string() }}) as batch_id,
        cast(run_id as {{ dbt.type_string() }}) as run_id,

        ----------  file
        cast(source_file as {{ dbt.type_string() }}) as source_file,
        cast(source_format as {{ dbt.type_string() }}) as source_format,
        cast(variant as {{ dbt.type_string() }}) as source_variant,
        cast(size_bytes as {{ dbt.type_bigint() }}) as size_bytes,
        cast(lake_raw_uri as {{ dbt.type_string() }}) as lake_raw_uri,
        cast(lake_parquet_uri as {{ dbt.type_string() }}) as lake_parquet_uri,

        ----------  counts
        cast(rows_in as {{ dbt.type_bigint() }}) as rows_in,
        cast(rows_loaded as {{ dbt.type_bigint() }}) as rows_loaded,
        cast(rows_rejected as {{ dbt.type_bigint() }}) as rows_rejected,

        ----------  booleans
        cast(dated as {{ dbt.type_boolean() }}) as is_dated,

        ----------  timestamps
        cast(loaded_at as {{ dbt.type_timestamp() }}) as loaded_at,
        cast(seconds as {{ type_double() }}) as load_seconds

    from source

)

select * from renamed

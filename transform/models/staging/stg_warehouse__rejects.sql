with

source as (

    select * from {{ source('warehouse', 'rejects') }}

),

renamed as (

    select

        ----------  ids
        {{ surrogate_key(['batch_id', 'line', 'column_name', 'reason', 'raw_text']) }} as reject_id,
        cast(batch_id as {{ dbt.type_string() }}) as batch_id,

        ----------  rejected row
        cast(source_file as {{ dbt.type_string() }}) as source_file,
        cast(line as {{ dbt.type_bigint() }}) as source_line,
        cast(column_name as {{ dbt.type_string() }}) as column_name,
        cast(reason as {{ dbt.type_string() }}) as reason,
        cast(raw_text as {{ dbt.type_string() }}) as raw_text

    from source

)

select * from renamed

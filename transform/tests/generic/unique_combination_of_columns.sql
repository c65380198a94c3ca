{#- Combinations of the given columns that occur more than once (the grain of the model). -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

grouped as (

    select
        {{ combination_of_columns | join(', ') }},
        count(*) as n_rows
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}

),

errors as (

    select *
    from grouped
    where n_rows > 1

)

select * from errors

{% endtest %}

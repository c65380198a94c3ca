{#- Rows for which a boolean SQL expression over the model's columns is not true. -#}
{% test expression_is_true(model, expression, column_name=none) %}

with

checked as (

    select
        *,
        {% if column_name is none -%}
        {{ expression }}
        {%- else -%}
        {{ column_name }} {{ expression }}
        {%- endif %} as expression_holds
    from {{ model }}

),

errors as (

    select *
    from checked
    where not coalesce(expression_holds, false)

)

select * from errors

{% endtest %}

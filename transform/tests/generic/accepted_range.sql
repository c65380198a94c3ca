{#- Rows whose value lies outside [min_value, max_value] (either bound optional; NULLs pass). -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}

with

validation as (

    select {{ column_name }} as value_checked
    from {{ model }}
    where {{ column_name }} is not null

),

errors as (

    select *
    from validation
    where
        1 = 2
        {%- if min_value is not none %}
        or value_checked {{ '<' if inclusive else '<=' }} {{ min_value }}
        {%- endif %}
        {%- if max_value is not none %}
        or value_checked {{ '>' if inclusive else '>=' }} {{ max_value }}
        {%- endif %}

)

select * from errors

{% endtest %}

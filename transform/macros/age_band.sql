{#- Age band of an age in years: <25, 25-34, 35-44, 45-54, 55-64, 65+, or Unknown. -#}
{% macro age_band(age_expr) -%}
    case
        when {{ age_expr }} is null then 'Unknown'
        when {{ age_expr }} < 25 then '<25'
        when {{ age_expr }} < 35 then '25-34'
        when {{ age_expr }} < 45 then '35-44'
        when {{ age_expr }} < 55 then '45-54'
        when {{ age_expr }} < 65 then '55-64'
        else '65+'
    end
{%- endmacro %}


{#- Column types shared by the models and their contracts; valid on DuckDB and BigQuery. -#}

{#- Money: exact decimal with cents. -#}
{% macro type_money() -%}
    {{ return(adapter.dispatch('type_money', 'purchase_patterns')()) }}
{%- endmacro %}

{% macro default__type_money() -%}
    numeric(18, 2)
{%- endmacro %}

{#- 64-bit float (dbt.type_float() is a 32-bit float on some adapters). -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'purchase_patterns')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro duckdb__type_double() -%}
    double
{%- endmacro %}

{% macro bigquery__type_double() -%}
    float64
{%- endmacro %}

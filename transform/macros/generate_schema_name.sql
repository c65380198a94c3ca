{#-
    On DuckDB every layer gets its own plain schema (staging, intermediate, marts, quality,
    reference) next to the loader's raw and meta schemas. Elsewhere (BigQuery) dbt's default
    applies: <target dataset>_<custom schema>, e.g. purchase_patterns_marts.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif target.type == 'duckdb' -%}
        {{ custom_schema_name | trim }}
    {%- else -%}
        {{ target.schema }}_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}

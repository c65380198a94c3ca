{#- Date helpers with DuckDB and BigQuery implementations. Weeks are ISO weeks (Monday). -#}

{#- ISO day of week: 1 = Monday ... 7 = Sunday. -#}
{% macro day_of_week_iso(date_expr) -%}
    {{ return(adapter.dispatch('day_of_week_iso', 'purchase_patterns')(date_expr)) }}
{%- endmacro %}

{% macro default__day_of_week_iso(date_expr) -%}
    cast(extract(isodow from {{ date_expr }}) as {{ dbt.type_bigint() }})
{%- endmacro %}

{% macro duckdb__day_of_week_iso(date_expr) -%}
    cast(isodow({{ date_expr }}) as {{ dbt.type_bigint() }})
{%- endmacro %}

{% macro bigquery__day_of_week_iso(date_expr) -%}
    {#- BigQuery: 1 = Sunday ... 7 = Saturday -#}
    mod(extract(dayofweek from {{ date_expr }}) + 5, 7) + 1
{%- endmacro %}

{#- Monday of the ISO week holding the date, as a date. -#}
{% macro week_start(date_expr) -%}
    {{ return(adapter.dispatch('week_start', 'purchase_patterns')(date_expr)) }}
{%- endmacro %}

{% macro default__week_start(date_expr) -%}
    cast({{ dbt.date_trunc('week', date_expr) }} as date)
{%- endmacro %}

{#- BigQuery: step back to Monday with plain date arithmetic (same result as
    date_trunc(d, isoweek), which the BigQuery emulator cannot run). -#}
{% macro bigquery__week_start(date_expr) -%}
    date_sub({{ date_expr }}, interval {{ purchase_patterns.bigquery__day_of_week_iso(date_expr) }} - 1 day)
{%- endmacro %}

{#- First day of the month holding the date, as a date (dbt.date_trunc returns a timestamp
    on some adapters). -#}
{% macro month_start(date_expr) -%}
    {{ return(adapter.dispatch('month_start', 'purchase_patterns')(date_expr)) }}
{%- endmacro %}

{% macro default__month_start(date_expr) -%}
    cast({{ dbt.date_trunc('month', date_expr) }} as date)
{%- endmacro %}

{#- BigQuery: the first of the month by date arithmetic, a DATE (date_trunc(d, month) is
    the same on BigQuery but returns a DATETIME on the emulator). -#}
{% macro bigquery__month_start(date_expr) -%}
    date_sub({{ date_expr }}, interval extract(day from {{ date_expr }}) - 1 day)
{%- endmacro %}

{#- Whole days from start_date to end_date. -#}
{% macro days_between(start_date, end_date) -%}
    cast({{ dbt.datediff(start_date, end_date, 'day') }} as {{ dbt.type_bigint() }})
{%- endmacro %}

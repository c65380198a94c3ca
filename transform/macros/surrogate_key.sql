{#- A stable hashed key over several columns (NULLs and the separator are made explicit so
    that ('a-', 'b') and ('a', '-b') differ). Same idea as dbt_utils.generate_surrogate_key,
    which cannot be installed here. -#}
{% macro surrogate_key(field_list) -%}
    {%- set parts = [] -%}
    {%- for field in field_list -%}
        {%- do parts.append("coalesce(cast(" ~ field ~ " as " ~ dbt.type_string() ~ "), '_null_')") -%}
        {%- if not loop.last -%}
            {%- do parts.append("'|'") -%}
        {%- endif -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}

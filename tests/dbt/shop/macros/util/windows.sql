{# Counts rows whose column falls in the last `days` days. #}
{% macro count_since(column, days) -%}
    countIf({{ column }} >= now() - interval {{ days }} day)
{%- endmacro %}

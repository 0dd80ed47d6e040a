{% macro cents_to_units(column, precision=2) -%}
    round({{ column }} / 100, {{ precision }})
{%- endmacro %}

{% macro lookback(days=none) -%}
{{ days if days is not none else var('lookback_days', 7) }}
{%- endmacro %}

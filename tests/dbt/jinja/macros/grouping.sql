{% macro follower_group(col) -%}
    multiIf(
    {%- for limit, label in [(5000, '0-5k'), (10000, '5k-10k'), (100000, '10k-100k')] %}
        {{ col }} < {{ limit }}, '{{ label }}',
    {%- endfor %}
        '100k+'
    )
{%- endmacro %}

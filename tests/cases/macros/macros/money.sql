{% macro cents_to_dollars(column, scale=2) -%}
    round({{ column }} / 100, {{ scale }})
{%- endmacro %}

{% macro since(days) -%}
    {% if is_incremental() %}where updated_at > (select max(updated_at) from {{ this }}){% else %}where updated_at > now() - interval {{ days }} day{% endif %}
{%- endmacro %}

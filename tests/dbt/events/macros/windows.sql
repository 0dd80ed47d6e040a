{% macro incremental_window(column) -%}
{%- if is_incremental() -%}
where {{ column }} > (select max({{ column }}) from {{ this }}) - {{ lookback() }}
{%- else -%}
where {{ column }} >= today() - 365
{%- endif -%}
{%- endmacro %}

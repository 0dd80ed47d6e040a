{% macro pick_materialization() %}
  {{ log("picking", info=True) }}
  {{ return('table') }}
{% endmacro %}

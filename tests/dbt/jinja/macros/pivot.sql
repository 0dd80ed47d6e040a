{#- One column per value: sum(if(col = 'v', measure, 0)) as prefix_v -#}
{% macro pivot(column, values, measure='1', prefix='n') -%}
{%- for v in values %}
    sum(if({{ column }} = '{{ v }}', {{ measure }}, 0)) as {{ prefix }}_{{ v | lower | replace(' ', '_') }}{{ ',' if not loop.last }}
{%- endfor %}
{%- endmacro %}

{% macro wrap_select(alias) -%}
select * from ({{ caller() }}) as {{ alias }}
{%- endmacro %}

{% macro audit_columns() -%}
    now() as loaded_at, '{{ this.identifier }}' as loaded_by
{%- endmacro %}

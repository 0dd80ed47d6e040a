{% macro unclosed(x) %}
select {{ x }}

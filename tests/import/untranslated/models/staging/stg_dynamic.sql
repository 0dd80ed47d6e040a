{{ config(materialized=pick_materialization()) }}
{% set rows = run_query('select 1') %}
select 1 as x

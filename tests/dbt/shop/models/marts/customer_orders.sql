{{
    config(
        partition_by='toYYYYMM(first_order)',
        query_settings={'max_threads': 2}
    )
}}
{%- set windows = [7, 30, 90] %}
with orders as (
    select * from {{ ref('stg_orders') }}
)
select
    c.customer_id,
    min(o.created_at) as first_order,
    {% for d in windows -%}
    {{ count_since('o.created_at', d) }} as orders_{{ d }}d,
    {% endfor -%}
    {{ cents_to_units('sum(o.amount * 100)', precision=4) }} as revenue
from {{ ref('stg_customers') }} c
left join orders o on o.customer_id = c.customer_id
group by c.customer_id

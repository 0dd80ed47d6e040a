{{ config(materialized='incremental', incremental_strategy='append', order_by='day') }}
select toDate(created_at) as day, sum(amount) as revenue
from {{ ref('stg_orders') }}
{% if is_incremental() %}
where toDate(created_at) > (select max(day) from {{ this }})
{% endif %}
group by day

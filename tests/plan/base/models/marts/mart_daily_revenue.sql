select order_date as day, sum(revenue) as revenue
from {{ ref('mart_customer_orders') }}
{% if is_incremental() %}
where order_date >= (select max(day) from {{ this }})
{% endif %}
group by day

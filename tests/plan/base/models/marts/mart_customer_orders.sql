select o.customer_id, o.order_date, count() as order_count, sum(o.amount) as revenue
from {{ ref('stg_orders') }} o
group by o.customer_id, o.order_date;

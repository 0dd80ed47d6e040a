select c.customer_id, c.name, c.tags, c.profile, sum(co.revenue) as revenue, sum(co.order_count) as order_count
from {{ ref('stg_customers') }} c
join {{ ref('mart_customer_orders') }} co on co.customer_id = c.customer_id
group by c.customer_id, c.name, c.tags, c.profile
order by revenue desc
limit 1000

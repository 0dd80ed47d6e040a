select id as order_id, customer_id, amount, toDate(created_at) as order_date
from {{ source('raw', 'orders') }}
where amount >= {{ var('min_amount') }}

select
    i.id item_id,
    i.order_id order_id,
    i.product product,
    i.quantity quantity,
    i.unit_price unit_price,
    i.amount amount,
    o.status order_status,
    o.created_at ordered_at
from {{ ref('stg_coffee_order_items') }} i
inner join {{ ref('mart_gcc_orders') }} o on o.order_id = i.order_id

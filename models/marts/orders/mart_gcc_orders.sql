select
    o.id order_id,
    o.account_id account_id,
    o.partner_id partner_id,
    o.status status,
    o.currency currency,
    o.gross_amount gross_amount,
    o.discount_amount discount_amount,
    o.amount amount,
    items.item_count item_count,
    o.created_at created_at,
    o.paid_at paid_at,
    row_number() over (partition by o.account_id order by o.created_at) = 1 is_first_order
from {{ ref('stg_coffee_orders') }} o
left join (
    select order_id, toInt32(sum(quantity)) item_count
    from {{ ref('stg_coffee_order_items') }}
    group by order_id
) items on items.order_id = o.id

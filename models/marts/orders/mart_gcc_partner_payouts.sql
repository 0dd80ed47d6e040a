select
    p.id partner_id,
    toStartOfMonth(assumeNotNull(o.paid_at)) month,
    p.name partner_name,
    toInt32(count()) orders,
    toDecimal64(sum(o.amount) * p.commission_rate, 2) payout_amount
from {{ ref('stg_coffee_orders') }} o
inner join {{ ref('stg_coffee_partner') }} p on p.id = o.partner_id
where o.status = 'PAID' and o.paid_at is not null
group by partner_id, month, partner_name, p.commission_rate

select
    toDate(assumeNotNull(paid_at)) date,
    toInt32(count()) orders,
    sum(gross_amount) gross_amount,
    sum(discount_amount) discount_amount,
    sum(amount) net_amount,
    toInt32(countIf(is_first_order)) new_customers
from {{ ref('mart_gcc_orders') }}
where status = 'PAID' and paid_at is not null
group by date

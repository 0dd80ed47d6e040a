with
data as (
    select
        id,
        order_id,
        product,
        quantity,
        toDecimal64(unit_price, 2) unit_price,
        toDecimal64(unit_price * quantity, 2) amount,
        created_at
    from {{ source('coffee', 'order_items') }}
)
select * from data

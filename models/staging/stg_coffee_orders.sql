with
data as (
    select
        id,
        account_id,
        partner_id,
        status,
        currency,
        toDecimal64(gross_amount, 2) gross_amount,
        toDecimal64(discount_amount, 2) discount_amount,
        toDecimal64(gross_amount - discount_amount, 2) amount,
        created_at,
        paid_at
    from {{ source('coffee', 'orders') }}
)
select * from data

with
data as (
    select
        id,
        name,
        commission_rate,
        is_active,
        created_at
    from {{ source('coffee', 'partner') }}
)
select * from data

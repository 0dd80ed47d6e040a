with
data as (
    select
        id,
        name,
        email,
        plan,
        country,
        is_active,
        created_at,
        updated_at
    from {{ source('coffee', 'account') }}
)
select * from data

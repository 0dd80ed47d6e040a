with
data as (
    select
        id,
        name,
        parent_id,
        platform,
        display_order,
        keywords
    from {{ source('coffee', 'category') }}
    where is_active
)
select * from data

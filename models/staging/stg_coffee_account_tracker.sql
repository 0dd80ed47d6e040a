with
data as (
    select
        id,
        account_id,
        upper(platform) platform,
        platform_id,
        lower(handle) handle,
        created_at
    from {{ source('coffee', 'account_tracker') }}
    where deleted_at is null
)
select * from data

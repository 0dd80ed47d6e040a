with
data as (
    select
        id,
        collection_id,
        upper(platform) platform,
        platform_id,
        lower(handle) handle,
        notes,
        created_at
    from {{ source('coffee', 'profile_collection_item') }}
    where deleted_at is null
)
select * from data

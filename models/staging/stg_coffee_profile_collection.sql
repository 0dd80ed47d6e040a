with
data as (
    select
        id,
        name,
        share_id,
        account_id,
        collection_type,
        is_active,
        created_at,
        updated_at
    from {{ source('coffee', 'profile_collection') }}
    where deleted_at is null
)
select * from data

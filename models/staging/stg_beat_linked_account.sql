with
data as (
    select
        lower(handle) handle,
        channel_id,
        category,
        source,
        created_at
    from {{ source('beat_replica', 'linked_account') }}
    where handle != '' and channel_id != ''
)
select * from data

with
data as (
    select
        id,
        name,
        lower(instagram_handle) instagram_handle,
        youtube_channel_id,
        account_id,
        created_at
    from {{ source('coffee', 'brand') }}
)
select * from data

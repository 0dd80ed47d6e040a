with
data as (
    select
        id,
        platform,
        profile_id,
        handle,
        followers,
        following,
        post_count,
        views,
        created_at
    from {{ source('beat_replica', 'profile_log') }}
    where followers > 0
)
select * from data

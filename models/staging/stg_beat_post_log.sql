with
data as (
    select
        id,
        platform,
        profile_id,
        shortcode,
        likes,
        comments,
        views,
        plays,
        created_at
    from {{ source('beat_replica', 'post_log') }}
    where created_at >= now() - INTERVAL 6 MONTH
)
select * from data

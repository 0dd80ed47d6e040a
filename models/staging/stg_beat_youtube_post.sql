with
data as (
    select
        video_id,
        channel_id,
        title,
        category,
        duration_seconds,
        duration_seconds <= 60 is_short,
        views,
        likes,
        comments,
        tags,
        published_at,
        updated_at
    from {{ source('beat_replica', 'youtube_post') }}
)
select * from data

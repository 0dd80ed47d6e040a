with
data as (
    select
        comment_id,
        shortcode,
        username,
        text,
        likes,
        sentiment,
        created_at
    from {{ source('beat_replica', 'instagram_comment') }}
    where created_at >= now() - INTERVAL 6 MONTH
)
select * from data

with
data as (
    select
        id,
        profile_id,
        shortcode,
        lower(post_type) post_type,
        caption,
        hashtags,
        mentions,
        likes,
        comments,
        views,
        plays,
        impressions,
        reach,
        saves,
        shares,
        profile_follower,
        profile_er,
        thumbnail_url,
        publish_time,
        created_at,
        updated_at
    from {{ source('beat_replica', 'instagram_post') }}
    where shortcode != ''
)
select * from data

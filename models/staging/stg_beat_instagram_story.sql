with
data as (
    select
        story_id,
        profile_id,
        handle,
        media_type,
        mentions,
        hashtags,
        link,
        impressions,
        reach,
        taps_forward,
        taps_back,
        replies,
        swipe_ups,
        sticker_taps,
        published_at,
        expires_at,
        updated_at
    from {{ source('beat_replica', 'instagram_story') }}
)
select * from data

select
    item.collection_id collection_id,
    s.story_id story_id,
    s.profile_id profile_id,
    s.handle handle,
    s.media_type media_type,
    s.published_at published_at,
    s.impressions impressions,
    s.reach reach,
    s.replies replies,
    s.swipe_ups swipe_ups,
    s.sticker_taps sticker_taps,
    s.taps_forward + s.taps_back taps,
    item.cost cost
from {{ ref('stg_coffee_post_collection_item') }} item
inner join {{ ref('stg_beat_instagram_story') }} s on s.story_id = item.short_code
where item.post_type = 'story'

select
    item.collection_id collection_id,
    item.short_code video_id,
    v.channel_id channel_id,
    ya.handle channel_handle,
    ya.subscribers subscribers,
    v.title title,
    v.published_at published_at,
    v.views views,
    v.likes likes,
    v.comments comments,
    v.is_short is_short,
    item.cost cost,
    if(v.views > 0, item.cost * 1000 / v.views, 0) cpv_1000,
    item.show_in_report show_in_report
from {{ ref('stg_coffee_post_collection_item') }} item
left join {{ ref('stg_beat_youtube_post') }} v on v.video_id = item.short_code
left join {{ ref('stg_beat_youtube_account') }} ya on ya.channel_id = v.channel_id
where item.platform = 'YOUTUBE'

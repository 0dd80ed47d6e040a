select
    v.video_id video_id,
    v.channel_id channel_id,
    v.title title,
    v.published_at published_at,
    v.views views,
    v.likes likes,
    v.comments comments,
    toInt32(v.duration_seconds) duration_seconds,
    v.is_short is_short
from {{ ref('stg_beat_youtube_post') }} v
where v.published_at >= now() - INTERVAL 90 DAY

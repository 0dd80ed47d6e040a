select
    channel_id,
    toInt32(countIf(is_short)) shorts_30d,
    avgIf(views, is_short) avg_short_views,
    countIf(is_short) / greatest(count(), 1) shorts_share
from {{ ref('mart_youtube_video_stats') }}
where published_at >= now() - INTERVAL 30 DAY
group by channel_id

select
    channel_id,
    max(subscribers) followers,
    avgIf(views, not is_short) avg_views,
    avgIf(views, is_short) avg_short_views,
    avg(likes) avg_likes,
    avg(comments) avg_comments,
    avg(engagement_rate) engagement_rate,
    count() / greatest(dateDiff('day', min(published_at), now()) / 7, 1) uploads_per_week,
    max(published_at) last_upload_at
from {{ ref('mart_youtube_recent_post_stats') }}
where post_rank_by_class <= 15
group by channel_id

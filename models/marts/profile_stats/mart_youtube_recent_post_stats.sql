select
    v.channel_id channel_id,
    v.video_id video_id,
    ya.subscribers subscribers,
    v.views views,
    v.likes likes,
    v.comments comments,
    v.is_short is_short,
    v.published_at published_at,
    if(v.views > 0, (v.likes + v.comments) * 100 / v.views, NULL) engagement_rate,
    row_number() over (partition by v.channel_id order by v.published_at desc) post_rank,
    row_number() over (partition by v.channel_id, v.is_short order by v.published_at desc) post_rank_by_class
from {{ ref('stg_beat_youtube_post') }} v
inner join {{ ref('stg_beat_youtube_account') }} ya on ya.channel_id = v.channel_id
where v.published_at >= now() - INTERVAL 180 DAY

select v.video_id video_id
from {{ ref('mart_youtube_video_stats') }} v
inner join {{ ref('mart_discovery_trending') }} t
    on t.platform = 'YOUTUBE' and t.platform_id = v.channel_id
where v.published_at >= now() - INTERVAL 3 DAY
order by t.trend_rank
limit 500

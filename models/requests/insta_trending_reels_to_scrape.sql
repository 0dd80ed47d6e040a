select r.shortcode shortcode
from {{ ref('mart_instagram_recent_posts') }} r
inner join {{ ref('mart_discovery_trending') }} t
    on t.platform = 'INSTAGRAM' and t.platform_id = r.profile_id
where r.post_type = 'reels' and r.publish_time >= now() - INTERVAL 3 DAY
order by t.trend_rank
limit 500

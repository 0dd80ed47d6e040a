select
    profile_id,
    count() stories_30d,
    avg(reach) avg_story_reach,
    avg(impressions) avg_story_impressions,
    max(published_at) last_story_at
from {{ ref('stg_beat_instagram_story') }}
where published_at >= now() - INTERVAL 30 DAY
group by profile_id

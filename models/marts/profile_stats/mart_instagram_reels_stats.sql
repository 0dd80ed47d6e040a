select
    profile_id,
    countIf(post_class = 'reels') reels_90d,
    countIf(post_class = 'reels') / greatest(count(), 1) reels_share,
    avgIf(plays, post_class = 'reels') avg_reel_plays,
    quantileIf(0.5)(plays, post_class = 'reels') median_reel_plays,
    maxIf(plays, post_class = 'reels') max_reel_plays,
    avgIf(plays, post_class = 'reels') / greatest(max(followers), 1) plays_to_followers
from {{ ref('mart_instagram_recent_post_stats') }}
group by profile_id

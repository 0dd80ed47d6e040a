select
    channel_id,
    video_id,
    is_short,
    published_at,
    post_rank,
    rank() over (partition by channel_id order by views desc) views_rank,
    rank() over (partition by channel_id order by likes desc, views desc) likes_rank,
    rank() over (partition by channel_id order by comments desc, views desc) comments_rank,
    rank() over (partition by channel_id, is_short order by views desc) views_rank_by_class
from {{ ref('mart_youtube_recent_post_stats') }}

{#- Each recent post ranked within its profile on every metric the profile page sorts by. -#}
select
    profile_id,
    post_shortcode,
    post_class,
    publish_time,
    post_rank,
    rank() over (partition by profile_id order by likes desc, comments desc) likes_rank,
    rank() over (partition by profile_id order by comments desc, likes desc) comments_rank,
    rank() over (partition by profile_id order by engagement desc) engagement_rank,
    rank() over (partition by profile_id order by ifNull(reach, 0) desc) reach_rank,
    rank() over (partition by profile_id, post_class order by ifNull(plays, 0) desc) plays_rank,
    er > 2 * avg(er) over (partition by profile_id) is_outlier
from {{ ref('mart_instagram_recent_post_stats') }}

{#- Per-profile post statistics over the 12 latest posts of each class. -#}
with
-- Multi-dimensional post ranking using window functions
recent_posts_by_class as (
    select
        profile_id, followers, following, post_shortcode, post_type,
        likes, comments, views, plays, engagement, impressions, reach,
        er, post_class, publish_time, post_rank, post_rank_by_class,
        rank() over (partition by profile_id, post_class
                     order by likes desc, comments desc, publish_time desc)
            likes_rank_by_class,
        rank() over (partition by profile_id, post_class
                     order by comments desc, likes desc, publish_time desc)
            comments_rank_by_class,
        rank() over (partition by profile_id, post_class
                     order by plays desc, likes desc, comments desc, publish_time desc)
            plays_rank_by_class,
        rank() over (partition by profile_id, post_class
                     order by views desc, likes desc, comments desc, publish_time desc)
            views_rank_by_class
    from {{ ref('mart_instagram_recent_post_stats') }}
    where post_rank_by_class <= 12
),
-- Drop the best and worst two posts of each class before averaging
trimmed as (
    select *
    from recent_posts_by_class
    where likes_rank_by_class > 2 and likes_rank_by_class <= 10
),
stories as (
    select profile_id, avg_story_reach story_reach
    from {{ ref('mart_instagram_story_stats') }}
)
select
    t.profile_id profile_id,
    max(t.followers) followers,
    max(t.following) following,
    avg(t.likes) avg_likes,
    avg(t.comments) avg_comments,
    avgIf(t.views, t.post_class = 'reels') avg_views,
    avgIf(t.plays, t.post_class = 'reels') avg_plays,
    avg(t.comments) * 100 / greatest(max(t.followers), 1) comments_rate,
    avg(t.engagement) * 100 / greatest(max(t.followers), 1) engagement_rate,
    avgIf(t.reach, t.post_class = 'reels') reels_reach,
    avgIf(t.reach, t.post_class = 'image') image_reach,
    any(s.story_reach) story_reach,
    avgIf(t.impressions, t.post_class = 'reels') reels_impressions,
    avgIf(t.impressions, t.post_class = 'image') image_impressions,
    sum(t.likes) / greatest(sum(t.comments), 1) likes_to_comment_ratio,
    count() post_count,
    stddevPop(t.likes) / greatest(avg(t.likes), 1) likes_spread,
    count() / greatest(dateDiff('day', min(t.publish_time), max(t.publish_time)) / 7, 1) avg_posts_per_week
from trimmed t
left join stories s on s.profile_id = t.profile_id
group by t.profile_id

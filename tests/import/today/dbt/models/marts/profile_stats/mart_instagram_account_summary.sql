-- Written from /work/shared/reference/current-platform.md (issue #16): the code the write-up
-- shows for this file, as it is written there (an excerpt: the lines it elides stay elided).
-- models/marts/profile_stats/mart_instagram_account_summary.sql (ACTUAL CODE)
{{ config(materialized = 'table', tags=["post_ranker"], order_by='profile_id') }}

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
    from {{ref('mart_instagram_recent_post_stats')}}
    where post_rank_by_class <= 12
)

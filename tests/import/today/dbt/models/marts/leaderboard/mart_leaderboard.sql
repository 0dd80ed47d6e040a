-- Written from /work/shared/reference/current-platform.md (issue #16): the code the write-up
-- shows for this file, as it is written there (an excerpt: the lines it elides stay elided).
-- models/marts/leaderboard/mart_leaderboard.sql (ACTUAL CODE, key structure)
{{ config(materialized = 'table', tags=["daily", "leaderboard"],
          order_by='month, platform, platform_id') }}

-- Instagram leaderboard
select
    month,
    'IA' profile_platform,
    language, category,
    ifNull(platform, 'MISSING') platform,
    platform_id,
    followers, engagement_rate, avg_likes, avg_comments, avg_views, avg_plays,
    followers_rank, followers_change_rank, views_rank,
    -- Per-dimension ranks
    followers_rank_by_cat, views_rank_by_cat,
    followers_rank_by_lang, views_rank_by_lang,
    followers_rank_by_cat_lang, views_rank_by_cat_lang,
    -- Previous month ranks stored as ClickHouse Map type
    CAST(map(
        'followers_rank', ifNull(followers_rank_prev, 0),
        'views_rank', ifNull(views_rank_prev, 0),
        'followers_change_rank', ifNull(followers_change_rank_prev, 0),
        'plays_rank', ifNull(plays_rank_prev, 0),
        -- ... 28 rank dimensions stored
    ), 'Map(String, UInt64)') last_month_ranks,
    CAST(map(
        'followers_rank', ifNull(followers_rank, 0),
        'views_rank', ifNull(views_rank, 0),
        -- ... 28 rank dimensions
    ), 'Map(String, UInt64)') current_month_ranks
from {{ref('mart_instagram_leaderboard')}}

UNION ALL

-- YouTube leaderboard
select ... from {{ref('mart_youtube_leaderboard')}}

UNION ALL

-- Cross-platform leaderboard
select ... from {{ref('mart_cross_platform_leaderboard')}}

SETTINGS max_bytes_before_external_group_by = 20000000000,
         max_bytes_before_external_sort = 20000000000,
         join_algorithm='partial_merge'

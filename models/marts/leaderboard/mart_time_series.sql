{#- Weekly and monthly growth series of Indian profiles, for the profile page charts.
    Memory settings (external group by / sort, partial_merge join) are on the model in stir.kdl. -#}

-- Filter to Indian profiles only
with channels as (
    select channelid from {{ ref('mart_youtube_account') }} where country = 'IN'
),
profile_ids as (
    select ig_id from {{ ref('mart_instagram_account') }} where country = 'IN'
),

-- YouTube weekly time series
yt_weekly as (
    select date, p_date, platform, platform_id,
        toInt64(if(base.views < 0, 0, base.views)) views_total,
        toInt64(if(views_change < 0, 0, views_change)) views,
        likes, comments, engagement, plays, followers, following,
        avg_views, avg_likes, avg_comments, engagement_rate, avg_plays,
        toInt64(if(uploads_change < 0, 0, uploads_change)) uploads,
        followers_change, false monthly_stats
    from {{ ref('mart_yt_account_weekly') }} base
    where platform_id in channels
),

-- Instagram weekly time series
insta_weekly as (
    select week date, p_week p_date, 'INSTAGRAM' platform, profile_id platform_id,
        toInt64(0) views_total,
        toInt64(ifNull(views, 0)) views,
        likes, comments, engagement, plays, followers, following,
        avg_views, avg_likes, avg_comments, engagement_rate, avg_plays,
        toInt64(ifNull(uploads, 0)) uploads,
        followers_change, false monthly_stats
    from {{ ref('mart_insta_account_weekly') }}
    where platform_id in profile_ids
),

-- Instagram monthly time series
insta_monthly as (
    select month date, p_month p_date, 'INSTAGRAM' platform, profile_id platform_id,
        toInt64(0) views_total,
        toInt64(ifNull(views, 0)) views,
        likes, comments, engagement, plays, followers, following,
        avg_views, avg_likes, avg_comments, engagement_rate, avg_plays,
        toInt64(ifNull(uploads, 0)) uploads,
        followers_change, true monthly_stats
    from {{ ref('mart_insta_account_monthly') }}
    where platform_id in profile_ids
),

-- YouTube monthly time series
yt_monthly as (
    select month date, p_month p_date, 'YOUTUBE' platform, platform_id,
        toInt64(if(views < 0, 0, views)) views_total,
        toInt64(if(views_change < 0, 0, views_change)) views,
        likes, comments, engagement, plays, followers, following,
        avg_views, avg_likes, avg_comments, engagement_rate, avg_plays,
        toInt64(if(uploads_change < 0, 0, uploads_change)) uploads,
        followers_change, true monthly_stats
    from {{ ref('mart_yt_account_monthly') }}
    where platform_id in channels
),

series as (
    select * from yt_weekly
        union all select * from insta_weekly
        union all select * from insta_monthly
        union all select * from yt_monthly
)
select
    toInt64(cityHash64(date, platform, platform_id, monthly_stats) % 9223372036854775807) id,
    *
from series

{#- Weekly snapshot of every Instagram profile: followers from beat's profile log, post
    activity from its posts. Incremental: each run recomputes the last two weeks only. -#}
with
followers_by_week_all as (
    select
        toStartOfWeek(created_at) week,
        profile_id,
        followers,
        following
    from {{ ref('stg_beat_profile_log') }}
    where platform = 'INSTAGRAM'
    {% if is_incremental() %}
      and created_at >= greatest((select max(week) from {{ this }}), toDate('1970-03-01')) - INTERVAL 14 DAY
    {% endif %}
),
followers_by_week as (
    select
        week, profile_id,
        max(followers) followers,
        max(following) following,
        -- Window function to get previous week's data
        groupArray(week) OVER (
            PARTITION BY profile_id ORDER BY week ASC
            ROWS BETWEEN 1 PRECEDING AND 0 FOLLOWING
        ) AS week_values,
        week_values[1] p_week,
        abs(p_week - week) <= 7 last_week_available,
        groupArray(followers) OVER (
            PARTITION BY profile_id ORDER BY week ASC
            ROWS BETWEEN 1 PRECEDING AND 0 FOLLOWING
        ) AS followers_values,
        followers_values[1] followers_prev,
        if(last_week_available = 1, followers - followers_prev, NULL) followers_change
    from followers_by_week_all
    group by week, profile_id
),
posts_by_week as (
    select
        toStartOfWeek(publish_time) week,
        profile_id,
        count() uploads,
        sum(p.likes) likes,
        sum(p.comments) comments,
        sum(p.views) views,
        sum(p.plays) plays,
        sum(p.likes + p.comments) engagement,
        avg(p.likes) avg_likes,
        avg(p.comments) avg_comments,
        avgIf(p.views, p.post_type = 'reels') avg_views,
        avgIf(p.plays, p.post_type = 'reels') avg_plays
    from {{ ref('stg_beat_instagram_post') }} p
    {% if is_incremental() %}
    where publish_time >= greatest((select max(week) from {{ this }}), toDate('1970-03-01')) - INTERVAL 14 DAY
    {% endif %}
    group by week, profile_id
)
select
    f.week week,
    f.p_week p_week,
    f.profile_id profile_id,
    f.followers followers,
    f.following following,
    f.followers_change followers_change,
    p.uploads uploads,
    p.likes likes,
    p.comments comments,
    p.views views,
    p.plays plays,
    p.engagement engagement,
    p.avg_likes avg_likes,
    p.avg_comments avg_comments,
    p.avg_views avg_views,
    p.avg_plays avg_plays,
    if(f.followers > 0, (p.avg_likes + p.avg_comments) * 100 / f.followers, NULL) engagement_rate
from followers_by_week f
left join posts_by_week p on p.profile_id = f.profile_id and p.week = f.week

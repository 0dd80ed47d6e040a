{#- Weekly snapshot of every YouTube channel, with week-over-week changes. -#}
with by_week as (
    select
        toStartOfWeek(created_at) date,
        profile_id platform_id,
        argMax(l.followers, l.created_at) followers,
        argMax(l.following, l.created_at) following,
        argMax(l.views, l.created_at) views,
        argMax(l.post_count, l.created_at) uploads
    from {{ ref('stg_beat_profile_log') }} l
    where platform = 'YOUTUBE'
    {% if is_incremental() %}
      and created_at >= greatest((select max(date) from {{ this }}), toDate('1970-03-01')) - INTERVAL 14 DAY
    {% endif %}
    group by date, platform_id
),
videos_by_week as (
    select
        toStartOfWeek(published_at) date,
        channel_id platform_id,
        sum(v.likes) likes,
        sum(v.comments) comments,
        sum(v.likes + v.comments) engagement,
        sumIf(v.views, v.is_short) plays,
        avgIf(v.views, not v.is_short) avg_views,
        avg(v.likes) avg_likes,
        avg(v.comments) avg_comments,
        avgIf(v.views, v.is_short) avg_plays,
        if(sum(v.views) > 0, sum(v.likes + v.comments) * 100 / sum(v.views), NULL) engagement_rate
    from {{ ref('stg_beat_youtube_post') }} v
    group by date, platform_id
),
with_prev as (
    select
        *,
        any(date) over w p_date,
        any(views) over w p_views,
        any(uploads) over w p_uploads,
        any(followers) over w p_followers
    from by_week
    window w as (partition by platform_id order by date asc rows between 1 preceding and 1 preceding)
)
select
    b.date date,
    b.p_date p_date,
    'YOUTUBE' platform,
    b.platform_id platform_id,
    b.views views,
    b.views - b.p_views views_change,
    v.likes likes,
    v.comments comments,
    v.engagement engagement,
    v.plays plays,
    b.followers followers,
    b.following following,
    v.avg_views avg_views,
    v.avg_likes avg_likes,
    v.avg_comments avg_comments,
    v.engagement_rate engagement_rate,
    v.avg_plays avg_plays,
    b.uploads uploads,
    b.uploads - b.p_uploads uploads_change,
    if(dateDiff('day', b.p_date, b.date) <= 7, b.followers - b.p_followers, NULL) followers_change
from with_prev b
left join videos_by_week v on v.platform_id = b.platform_id and v.date = b.date

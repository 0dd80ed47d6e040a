with daily as (
    select
        profile_id channel_id,
        toDate(created_at) date,
        argMax(followers, created_at) subscribers,
        argMax(views, created_at) views,
        argMax(post_count, created_at) uploads
    from {{ ref('stg_beat_profile_log') }}
    where platform = 'YOUTUBE' and created_at >= now() - INTERVAL 400 DAY
    group by channel_id, date
)
select
    channel_id,
    date,
    subscribers,
    views,
    uploads,
    subscribers - lagInFrame(subscribers) over (
        partition by channel_id order by date asc
        rows between 1 preceding and current row
    ) subscribers_change
from daily

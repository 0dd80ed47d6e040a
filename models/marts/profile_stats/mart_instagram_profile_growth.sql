{#- Daily follower counts of Instagram profiles, from beat's profile log. -#}
with daily as (
    select
        profile_id,
        toDate(created_at) date,
        argMax(followers, created_at) followers,
        argMax(following, created_at) following,
        argMax(post_count, created_at) posts
    from {{ ref('stg_beat_profile_log') }}
    where platform = 'INSTAGRAM' and created_at >= now() - INTERVAL 400 DAY
    group by profile_id, date
)
select
    profile_id,
    date,
    followers,
    following,
    posts,
    followers - lagInFrame(followers) over (
        partition by profile_id order by date asc
        rows between 1 preceding and current row
    ) followers_change
from daily

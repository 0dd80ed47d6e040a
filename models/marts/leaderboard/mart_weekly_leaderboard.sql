{#- Fastest-growing creators of the last complete week, per platform. -#}
with last_week as (
    select toStartOfWeek(today()) - INTERVAL 7 DAY week
),
instagram as (
    select week, 'INSTAGRAM' platform, profile_id platform_id, followers, followers_change
    from {{ ref('mart_insta_account_weekly') }}
    where week = (select week from last_week) and followers_change is not null
),
youtube as (
    select date week, 'YOUTUBE' platform, platform_id, followers, followers_change
    from {{ ref('mart_yt_account_weekly') }}
    where date = (select week from last_week) and followers_change is not null
),
profiles as (
    select ig_id platform_id, handle, category, language from {{ ref('mart_instagram_account') }}
    union all
    select channelid platform_id, handle, category, language from {{ ref('mart_youtube_account') }}
),
combined as (
    select * from instagram
    union all
    select * from youtube
)
select
    c.week week,
    c.platform platform,
    c.platform_id platform_id,
    p.handle handle,
    ifNull(p.category, 'MISSING') category,
    ifNull(p.language, 'MISSING') language,
    c.followers followers,
    c.followers_change followers_change,
    toInt32(rank() over (partition by c.platform order by c.followers_change desc)) weekly_rank
from combined c
left join profiles p on p.platform_id = c.platform_id

{#- The profiles each customer tracks, with their latest numbers. -#}
with weekly as (
    select
        profile_id,
        argMax(followers_change, week) followers_change_7d
    from {{ ref('mart_insta_account_weekly') }}
    where week >= toStartOfWeek(today()) - INTERVAL 14 DAY
    group by profile_id
)
select
    t.account_id account_id,
    t.platform platform,
    t.platform_id platform_id,
    coalesce(ia.handle, ya.handle, t.handle) handle,
    coalesce(ia.followers, ya.subscribers) followers,
    ifNull(w.followers_change_7d, 0) followers_change_7d,
    s.engagement_rate engagement_rate,
    toInt32(countIf(p.publish_time >= now() - INTERVAL 7 DAY)) posts_last_7d,
    greatest(ia.updated_at, ya.updated_at) last_scraped_at
from {{ ref('stg_coffee_account_tracker') }} t
left join {{ ref('stg_beat_instagram_account') }} ia on t.platform = 'INSTAGRAM' and ia.profile_id = t.platform_id
left join {{ ref('stg_beat_youtube_account') }} ya on t.platform = 'YOUTUBE' and ya.channel_id = t.platform_id
left join {{ ref('mart_instagram_account_summary') }} s on s.profile_id = t.platform_id
left join weekly w on w.profile_id = t.platform_id
left join {{ ref('mart_instagram_recent_posts') }} p on p.profile_id = t.platform_id
group by account_id, platform, platform_id, handle, followers, followers_change_7d, engagement_rate, last_scraped_at

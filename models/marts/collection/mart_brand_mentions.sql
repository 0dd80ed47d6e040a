{#- Creators mentioning a client brand in their posts, per day. -#}
with brands as (
    select instagram_handle brand_handle
    from {{ ref('stg_coffee_brand') }}
    where instagram_handle != ''
),
mentions as (
    select
        lower(arrayJoin(mentions)) brand_handle,
        toDate(publish_time) date,
        profile_id,
        likes,
        comments
    from {{ ref('stg_beat_instagram_post') }}
    where publish_time >= now() - INTERVAL 90 DAY
)
select
    m.brand_handle brand_handle,
    m.date date,
    m.profile_id profile_id,
    any(ia.handle) handle,
    toInt32(count()) posts,
    sum(m.likes) likes,
    sum(m.comments) comments,
    any(ia.followers) followers
from mentions m
inner join brands b on b.brand_handle = m.brand_handle
left join {{ ref('stg_beat_instagram_account') }} ia on ia.profile_id = m.profile_id
group by brand_handle, date, profile_id

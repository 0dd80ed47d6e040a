{#- Category of each creator: the category beat scraped when present, otherwise the
    coffee category whose keywords best match the creator's recent hashtags. -#}
with hashtags as (
    select profile_id, groupArray(100)(tag) tags
    from (
        select profile_id, arrayJoin(arrayMap(x -> lower(x), hashtags)) tag
        from {{ ref('stg_beat_instagram_post') }}
        where publish_time >= now() - INTERVAL 90 DAY
    )
    group by profile_id
),
categories as (
    select name category, keywords
    from {{ ref('stg_coffee_category') }}
    where platform = 'INSTAGRAM' and parent_id is null
),
scored as (
    select
        h.profile_id profile_id,
        c.category category,
        length(arrayIntersect(h.tags, c.keywords)) hits,
        hits / greatest(length(h.tags), 1) confidence
    from hashtags h
    cross join categories c
)
select
    ia.profile_id profile_id,
    if(ia.category != '', ia.category, argMax(s.category, s.hits)) category,
    '' sub_category,
    toFloat32(if(ia.category != '', 1.0, max(s.confidence))) confidence,
    if(ia.category != '', 'beat', 'hashtags') source
from {{ ref('stg_beat_instagram_account') }} ia
left join scored s on s.profile_id = ia.profile_id
group by ia.profile_id, ia.category

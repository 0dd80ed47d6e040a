{#- Totals per post collection, as shown at the top of a campaign report. -#}
with posts as (
    select
        collection_id,
        count() posts,
        uniqExact(profile_social_id) creators,
        sum(views) views,
        sum(likes) likes,
        sum(comments) comments,
        sum(reach) + sum(story_reach) reach,
        sum(impressions) impressions,
        sum(engagement) engagement,
        sum(cost) cost
    from {{ ref('mart_collection_post') }}
    where show_in_report
    group by collection_id
),
videos as (
    select collection_id, count() videos, sum(views) video_views, sum(cost) video_cost
    from {{ ref('mart_collection_youtube_post') }}
    where show_in_report
    group by collection_id
)
select
    c.id collection_id,
    c.name name,
    c.share_id share_id,
    c.account_id account_id,
    ifNull(p.posts, 0) + ifNull(v.videos, 0) posts,
    p.creators creators,
    ifNull(p.views, 0) + ifNull(v.video_views, 0) views,
    p.likes likes,
    p.comments comments,
    p.reach reach,
    p.impressions impressions,
    p.engagement engagement,
    ifNull(p.cost, 0) + ifNull(v.video_cost, 0) cost,
    if(p.impressions > 0, cost * 1000 / p.impressions, 0) cpm
from {{ ref('stg_coffee_post_collection') }} c
left join posts p on p.collection_id = c.id
left join videos v on v.collection_id = c.id

{#- What each creator of a campaign delivered: posts in the campaign's collections. -#}
select
    cp.campaign_id campaign_id,
    cp.platform platform,
    cp.platform_id platform_id,
    cp.handle handle,
    cp.status status,
    cp.agreed_cost agreed_cost,
    count(post.post_short_code) posts_delivered,
    sum(post.likes) likes,
    sum(post.comments) comments,
    sum(post.views) views,
    sum(post.engagement) engagement
from {{ ref('stg_coffee_campaign_profiles') }} cp
left join {{ ref('stg_coffee_post_collection') }} pc on pc.campaign_id = cp.campaign_id
left join {{ ref('mart_collection_post') }} post
    on post.collection_id = pc.id and post.profile_social_id = cp.platform_id
group by campaign_id, platform, platform_id, handle, status, agreed_cost

{#- Every profile of every profile collection, with its current discovery metrics. -#}
select
    item.collection_id collection_id,
    item.platform platform,
    item.platform_id platform_id,
    coalesce(ia.handle, ya.handle, item.handle) handle,
    coalesce(ia.followers, ya.followers) followers,
    coalesce(ia.engagement_rate, ya.engagement_rate) engagement_rate,
    coalesce(ia.avg_likes, ya.avg_likes) avg_likes,
    ia.avg_views avg_views,
    coalesce(ia.category, ya.category) category,
    ia.engagement_rate_grade engagement_rate_grade,
    item.created_at added_at
from {{ ref('stg_coffee_profile_collection_item') }} item
left join {{ ref('mart_instagram_account') }} ia
    on item.platform = 'INSTAGRAM' and ia.ig_id = item.platform_id
left join {{ ref('mart_youtube_account') }} ya
    on item.platform = 'YOUTUBE' and ya.channelid = item.platform_id

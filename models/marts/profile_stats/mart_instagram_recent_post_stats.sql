{#- The last 90 days of posts of every profile, classed (reels / image) and ranked by recency. -#}
with posts as (
    select
        p.profile_id profile_id,
        ia.followers followers,
        ia.following following,
        p.shortcode post_shortcode,
        p.post_type post_type,
        p.likes likes,
        p.comments comments,
        p.views views,
        p.plays plays,
        p.likes + p.comments engagement,
        p.impressions impressions,
        p.reach reach,
        if(ia.followers > 0, (p.likes + p.comments) * 100 / ia.followers, NULL) er,
        if(p.post_type = 'reels', 'reels', 'image') post_class,
        p.publish_time publish_time
    from {{ ref('stg_beat_instagram_post') }} p
    inner join {{ ref('stg_beat_instagram_account') }} ia on ia.profile_id = p.profile_id
    where p.publish_time >= now() - INTERVAL 90 DAY
)
select
    *,
    row_number() over (partition by profile_id order by publish_time desc) post_rank,
    row_number() over (partition by profile_id, post_class order by publish_time desc) post_rank_by_class
from posts

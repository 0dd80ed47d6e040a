{#- The 12 newest posts of each profile, refreshed every 15 minutes for profile pages. -#}
select *
from (
select
    p.profile_id profile_id,
    p.shortcode shortcode,
    p.post_type post_type,
    p.thumbnail_url thumbnail_url,
    p.likes likes,
    p.comments comments,
    p.views views,
    p.plays plays,
    p.publish_time publish_time,
    row_number() over (partition by p.profile_id order by p.publish_time desc) recency_rank
from {{ ref('stg_beat_instagram_post') }} p
where p.publish_time >= now() - INTERVAL 30 DAY
)
where recency_rank <= 12

select
    r.profile_id profile_id,
    r.shortcode shortcode,
    r.post_type post_type,
    r.likes likes,
    r.comments comments,
    (r.likes + r.comments) * 100 / greatest(ia.followers, 1) er,
    rank() over (partition by r.profile_id order by r.likes + r.comments desc) post_rank
from {{ ref('mart_instagram_recent_posts') }} r
inner join {{ ref('stg_beat_instagram_account') }} ia on ia.profile_id = r.profile_id

{#- Deprecated: the first discovery profile, before grading. Kept for reference. -#}
select
    ia.ig_id ig_id,
    ia.handle handle,
    ia.name name,
    ia.followers followers,
    s.engagement_rate engagement_rate,
    s.avg_likes avg_likes,
    s.avg_comments avg_comments
from {{ ref('stg_beat_instagram_account') }} ia
left join {{ ref('mart_instagram_account_summary') }} s on s.profile_id = ia.profile_id

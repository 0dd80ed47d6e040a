{#- Engagement of each collection post against its creator's usual engagement. -#}
select
    cp.collection_id collection_id,
    cp.post_short_code post_short_code,
    cp.profile_social_id profile_social_id,
    cp.engagement engagement,
    cp.engagement_rate engagement_rate,
    s.engagement_rate creator_avg_engagement_rate,
    if(s.engagement_rate > 0, cp.engagement_rate / s.engagement_rate, NULL) engagement_lift,
    multiIf(engagement_lift is null, 'UNKNOWN', engagement_lift >= 1.5, 'ABOVE', engagement_lift >= 0.7, 'TYPICAL', 'BELOW') performance
from {{ ref('mart_collection_post') }} cp
left join {{ ref('mart_instagram_account_summary') }} s on s.profile_id = cp.profile_social_id

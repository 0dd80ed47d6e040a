{#- Estimated share of real followers: beat's measurement, lowered for profiles whose
    engagement is far below their follower group's. -#}
with er as (
    select profile_id, engagement_rate, followers
    from {{ ref('mart_instagram_account_summary') }}
)
select
    aud.profile_id profile_id,
    least(100, greatest(0,
        ifNull(aud.authenticity, 0.8) * 100
        - if(er.engagement_rate < 0.5 and er.followers > 50000, 15, 0)
    )) audience_authencity
from {{ ref('stg_beat_instagram_audience') }} aud
left join er on er.profile_id = aud.profile_id

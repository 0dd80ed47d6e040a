{#- City and state of each profile, from the profile's own city field or, failing
    that, the most common city of its audience. -#}
with audience_city as (
    select profile_id, argMax(city, share) top_audience_city
    from {{ ref('mart_instagram_audience_city') }}
    group by profile_id
)
select
    ia.profile_id profile_id,
    coalesce(nullIf(trim(splitByChar(',', ifNull(ia.city, ''))[1]), ''), ac.top_audience_city) city,
    trim(splitByChar(',', ifNull(ia.city, ''))[2]) state,
    ifNull(nullIf(ia.country, ''), 'IN') country
from {{ ref('stg_beat_instagram_account') }} ia
left join audience_city ac on ac.profile_id = ia.profile_id

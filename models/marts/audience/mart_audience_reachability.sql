{#- Share of a profile's followers that follow few enough accounts to actually see its
    posts, as scraped by beat; falls back to a follower-count heuristic. -#}
select
    ia.profile_id profile_id,
    coalesce(
        nullIf(aud.reachability, 0),
        multiIf(ia.followers < 10000, 0.62, ia.followers < 100000, 0.48, ia.followers < 1000000, 0.37, 0.29)
    ) * 100 audience_reachability,
    aud.reachability is not null and aud.reachability > 0 measured
from {{ ref('stg_beat_instagram_account') }} ia
left join {{ ref('stg_beat_instagram_audience') }} aud on aud.profile_id = ia.profile_id

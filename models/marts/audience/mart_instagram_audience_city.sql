{#- One row per profile and audience city; cities below 1% of the audience dropped. -#}
select
    profile_id,
    trim(splitByChar(',', city_share.1)[1]) city,
    city_share.2 share,
    row_number() over (partition by profile_id order by city_share.2 desc) city_rank
from {{ ref('stg_beat_instagram_audience') }}
array join arrayZip(mapKeys(cities), mapValues(cities)) as city_share
where city_share.2 >= 0.01

select
    profile_id,
    age['13-17'] age_13_17,
    age['18-24'] age_18_24,
    age['25-34'] age_25_34,
    age['35-44'] age_35_44,
    age['45-54'] + age['55-64'] + age['65+'] age_45_plus,
    arrayReduce('argMax', mapKeys(age), mapValues(age)) dominant_age_group,
    updated_at
from {{ ref('stg_beat_instagram_audience') }}
where length(mapKeys(age)) > 0

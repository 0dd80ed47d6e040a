select
    channel_id,
    gender['male'] male_share,
    gender['female'] female_share,
    age['18-24'] age_18_24,
    age['25-34'] age_25_34,
    countries['IN'] india_share,
    arrayReduce('argMax', mapKeys(countries), mapValues(countries)) top_country,
    updated_at
from {{ ref('stg_beat_youtube_audience') }}

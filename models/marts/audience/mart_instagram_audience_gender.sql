select
    profile_id,
    gender['male'] male_share,
    gender['female'] female_share,
    greatest(0, 1 - male_share - female_share) other_share,
    multiIf(male_share >= 0.6, 'MALE', female_share >= 0.6, 'FEMALE', 'MIXED') dominant_gender,
    updated_at
from {{ ref('stg_beat_instagram_audience') }}
where length(mapKeys(gender)) > 0

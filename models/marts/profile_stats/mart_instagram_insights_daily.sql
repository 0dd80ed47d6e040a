select
    profile_id,
    date,
    impressions,
    reach,
    profile_views,
    website_clicks,
    impressions - lagInFrame(impressions) over (
        partition by profile_id order by date asc
        rows between 1 preceding and current row
    ) impressions_change
from {{ ref('stg_beat_instagram_insights') }}
where date >= today() - 365

select
    week,
    language,
    platform_id,
    platform,
    handle,
    followers_change,
    toInt32(rank() over (partition by week, language order by followers_change desc)) language_rank
from {{ ref('mart_weekly_leaderboard') }}
where language != 'MISSING'

select
    week,
    category,
    platform_id,
    platform,
    handle,
    followers_change,
    toInt32(rank() over (partition by week, category order by followers_change desc)) category_rank
from {{ ref('mart_weekly_leaderboard') }}
where category != 'MISSING'

select platform, handle
from {{ ref('mart_weekly_leaderboard') }}
where weekly_rank <= 2500 and handle != ''
limit 5000

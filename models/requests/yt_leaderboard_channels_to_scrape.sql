select platform_id channel_id, min(views_rank) best_rank
from {{ ref('mart_youtube_leaderboard') }}
where month = toStartOfMonth(today()) and views_rank <= 2000
group by platform_id
order by best_rank
limit 2000

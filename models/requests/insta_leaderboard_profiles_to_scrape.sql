{#- Profiles in this month's Instagram top 2000, so tomorrow's ranks use fresh numbers. -#}
select handle, min(followers_rank) best_rank
from {{ ref('mart_instagram_leaderboard') }}
where month = toStartOfMonth(today()) and followers_rank <= 2000
group by handle
order by best_rank
limit 2000

{#- Deprecated: the single-platform leaderboard the app used before mart_leaderboard. -#}
select
    month,
    platform_id,
    handle,
    category,
    followers,
    followers_rank,
    followers_change_rank
from {{ ref('mart_instagram_leaderboard') }}

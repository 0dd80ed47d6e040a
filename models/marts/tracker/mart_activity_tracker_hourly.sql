select
    toStartOfHour(created_at) hour,
    account_id,
    count() events,
    countIf(event = 'search') searches,
    countIf(event = 'profile_view') profile_views,
    countIf(event = 'export') exports
from {{ ref('stg_coffee_activity_tracker') }}
where created_at >= now() - INTERVAL 7 DAY
group by hour, account_id

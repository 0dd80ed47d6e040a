select
    a.id account_id,
    a.plan plan,
    ifNull(s.searches_30d, 0) searches_30d,
    ifNull(act.unlocks_30d, 0) profiles_unlocked_30d,
    toInt32(ifNull(c.collections, 0)) collections,
    act.last_active_at last_active_at
from {{ ref('stg_coffee_account') }} a
left join (
    select account_id, count() searches_30d
    from {{ ref('stg_coffee_user_search') }}
    where created_at >= now() - INTERVAL 30 DAY
    group by account_id
) s on s.account_id = a.id
left join (
    select account_id, sumIf(events, hour >= now() - INTERVAL 30 DAY) unlocks_30d, max(hour) last_active_at
    from {{ ref('mart_activity_tracker_hourly') }}
    group by account_id
) act on act.account_id = a.id
left join (
    select account_id, count() collections
    from {{ ref('stg_coffee_post_collection') }}
    group by account_id
) c on c.account_id = a.id

select
    toDate(created_at) date,
    account_id,
    count() events,
    toInt32(uniqExact(toStartOfFiveMinutes(created_at)) * 5) active_minutes,
    groupUniqArray(feature) features_used
from {{ ref('stg_coffee_activity_tracker') }}
group by date, account_id

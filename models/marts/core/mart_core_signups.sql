select
    toDate(created_at) date,
    count() signups,
    countIf(plan != 'free') paid_signups,
    uniqExact(country) countries
from {{ ref('stg_coffee_account') }}
where created_at >= now() - INTERVAL 90 DAY
group by date

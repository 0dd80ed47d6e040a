select
    flow,
    toStartOfHour(created_at) hour,
    count() requests,
    countIf(status = 'COMPLETE') completed,
    countIf(status = 'FAILED') failed,
    countIf(status in ('PENDING', 'PICKED')) in_flight,
    quantile(0.5)(wait_seconds) p50_wait_seconds,
    quantile(0.95)(wait_seconds) p95_wait_seconds
from {{ ref('mart_recent_scrape_requests') }}
group by flow, hour

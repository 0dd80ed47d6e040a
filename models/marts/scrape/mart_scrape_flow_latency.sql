select
    flow,
    count() requests_6h,
    avg(wait_seconds) avg_wait_seconds,
    quantile(0.99)(wait_seconds) p99_wait_seconds,
    avg(run_seconds) avg_run_seconds,
    countIf(status = 'FAILED') / greatest(count(), 1) failure_rate
from {{ ref('mart_recent_scrape_requests') }}
group by flow

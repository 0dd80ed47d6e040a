{#- The last six hours of scrape requests, with how long each waited and ran. -#}
select
    id,
    flow,
    platform,
    status,
    JSONExtractString(params, 'shortcode') shortcode,
    JSONExtractString(params, 'handle') handle,
    created_at,
    dateDiff('second', created_at, picked_at) wait_seconds,
    dateDiff('second', picked_at, completed_at) run_seconds,
    retry_count
from {{ ref('stg_beat_scrape_request_log') }}
where created_at >= now() - INTERVAL 6 HOUR

{#- Targets that keep failing: the same exclusion rule the request jobs apply. -#}
select
    flow,
    JSONExtractString(params, 'shortcode') shortcode,
    uniqExactIf(id, status = 'FAILED') failures,
    uniqExactIf(id, status = 'COMPLETE') successes,
    max(created_at) last_attempt_at,
    argMax(error, created_at) last_error
from {{ ref('stg_beat_scrape_request_log') }}
where created_at >= now() - INTERVAL 1 MONTH
group by flow, shortcode
having failures > 1 and successes = 0

{#- Health of beat's scraping and asset pipeline over the last hour. -#}
with requests as (
    select
        flow,
        count() requests_1h,
        countIf(status = 'FAILED') / greatest(count(), 1) failure_rate_1h,
        countIf(status = 'PENDING' and created_at < now() - INTERVAL 30 MINUTE) stuck
    from {{ ref('stg_beat_scrape_request_log') }}
    where created_at >= now() - INTERVAL 1 HOUR
    group by flow
),
assets as (
    select
        concat('asset:', entity_type) flow,
        count() requests_1h,
        countIf(status = 'FAILED') / greatest(count(), 1) failure_rate_1h,
        countIf(status = 'PENDING' and created_at < now() - INTERVAL 30 MINUTE) stuck
    from {{ ref('stg_beat_asset_log') }}
    where created_at >= now() - INTERVAL 1 HOUR
    group by entity_type
)
select * from requests
union all
select * from assets

with
data as (
    select
        id,
        flow,
        platform,
        params,
        status,
        retry_count,
        error,
        created_at,
        picked_at,
        completed_at
    from {{ source('beat_replica', 'scrape_request_log') }}
    where created_at >= now() - INTERVAL 3 MONTH
)
select * from data

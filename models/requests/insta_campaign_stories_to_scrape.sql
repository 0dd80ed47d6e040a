{#- Creators of running campaigns: stories disappear after 24 hours, so poll often. -#}
with
running as (
    select id from {{ ref('stg_coffee_campaign') }}
    where status = 'LIVE' and start_date <= today() and (end_date is null or end_date >= today())
),
attempted_recently as (
    select JSONExtractString(params, 'handle') handle
    from {{ source('_e', 'scrape_request_log_events') }}
    where flow = 'refresh_stories_by_handle' and event_timestamp >= now() - INTERVAL 2 HOUR
)
select distinct cp.handle handle
from {{ ref('stg_coffee_campaign_profiles') }} cp
where cp.campaign_id in (select id from running)
  and cp.platform = 'INSTAGRAM'
  and cp.handle not in (select handle from attempted_recently)
limit 100

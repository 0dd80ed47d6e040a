with
handles as (
    select distinct handle
    from {{ ref('stg_coffee_profile_collection_item') }}
    where platform = 'INSTAGRAM' and handle != ''
),
attempted_recently as (
    select JSONExtractString(params, 'handle') handle
    from {{ source('_e', 'scrape_request_log_events') }}
    where flow = 'refresh_profile_by_handle' and event_timestamp >= now() - INTERVAL 24 HOUR
)
select h.handle handle, max(ia.updated_at) last_scraped_at
from handles h
left join {{ ref('stg_beat_instagram_account') }} ia on ia.handle = h.handle
where h.handle not in (select handle from attempted_recently)
group by h.handle
having last_scraped_at is null or last_scraped_at < now() - INTERVAL 3 DAY
order by last_scraped_at asc nulls first
limit 200

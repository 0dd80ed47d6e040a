with
channels as (
    select distinct platform_id channel_id
    from {{ ref('stg_coffee_profile_collection_item') }}
    where platform = 'YOUTUBE' and platform_id != ''
),
attempted_recently as (
    select JSONExtractString(params, 'channel_id') channel_id
    from {{ source('_e', 'scrape_request_log_events') }}
    where flow = 'refresh_yt_channel_by_id' and event_timestamp >= now() - INTERVAL 24 HOUR
)
select c.channel_id channel_id, max(ya.updated_at) last_scraped_at
from channels c
left join {{ ref('stg_beat_youtube_account') }} ya on ya.channel_id = c.channel_id
where c.channel_id not in (select channel_id from attempted_recently)
group by c.channel_id
having last_scraped_at is null or last_scraped_at < now() - INTERVAL 3 DAY
order by last_scraped_at asc nulls first
limit 200

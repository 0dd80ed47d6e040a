with
videos as (
    select short_code video_id
    from {{ ref('stg_coffee_post_collection_item') }}
    where platform = 'YOUTUBE' and created_at >= now() - INTERVAL 2 MONTH
),
attempted_recently as (
    select JSONExtractString(params, 'video_id') video_id
    from {{ source('_e', 'scrape_request_log_events') }}
    where flow = 'refresh_yt_video_by_id' and event_timestamp >= now() - INTERVAL 12 HOUR
)
select v.video_id video_id, max(yp.updated_at) last_scraped_at
from videos v
left join {{ ref('stg_beat_youtube_post') }} yp on yp.video_id = v.video_id
where v.video_id not in (select video_id from attempted_recently)
group by v.video_id
order by last_scraped_at asc nulls first
limit 250

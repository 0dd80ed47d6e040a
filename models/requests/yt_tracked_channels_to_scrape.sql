select t.platform_id channel_id, max(ya.updated_at) last_scraped_at
from {{ ref('stg_coffee_account_tracker') }} t
left join {{ ref('stg_beat_youtube_account') }} ya on ya.channel_id = t.platform_id
where t.platform = 'YOUTUBE'
group by t.platform_id
having last_scraped_at is null or last_scraped_at < now() - INTERVAL 6 HOUR
order by last_scraped_at asc nulls first
limit 500

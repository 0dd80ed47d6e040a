select t.handle handle, max(ia.updated_at) last_scraped_at
from {{ ref('stg_coffee_account_tracker') }} t
left join {{ ref('stg_beat_instagram_account') }} ia on ia.profile_id = t.platform_id
where t.platform = 'INSTAGRAM'
group by t.handle
having last_scraped_at is null or last_scraped_at < now() - INTERVAL 6 HOUR
order by last_scraped_at asc nulls first
limit 500

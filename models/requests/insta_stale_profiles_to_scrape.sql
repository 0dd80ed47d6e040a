{#- Discoverable profiles not refreshed for a week, biggest first. -#}
select ia.handle handle, ia.followers followers
from {{ ref('mart_instagram_account_search') }} s
inner join {{ ref('stg_beat_instagram_account') }} ia on ia.ig_id = s.ig_id
where ia.updated_at < now() - INTERVAL 7 DAY
order by ia.followers desc
limit 1000

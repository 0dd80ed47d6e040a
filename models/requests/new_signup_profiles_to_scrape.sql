{#- Profiles that new customers added to a collection in the last hour and that beat
    has never scraped. -#}
select distinct item.platform platform, item.handle handle
from {{ ref('stg_coffee_profile_collection_item') }} item
left join {{ ref('stg_beat_instagram_account') }} ia on ia.handle = item.handle
where item.created_at >= now() - INTERVAL 1 HOUR
  and item.handle != ''
  and (item.platform != 'INSTAGRAM' or ia.handle = '')
limit 100

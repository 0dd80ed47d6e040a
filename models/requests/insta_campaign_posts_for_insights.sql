select item.short_code shortcode, pc.campaign_id campaign_id
from {{ ref('stg_coffee_post_collection_item') }} item
inner join {{ ref('stg_coffee_post_collection') }} pc on pc.id = item.collection_id
where pc.campaign_id is not null
  and item.platform = 'INSTAGRAM'
  and item.created_at >= now() - INTERVAL 30 DAY
order by item.created_at desc
limit 1000

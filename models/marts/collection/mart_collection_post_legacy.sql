{#- Deprecated: the collection report before stories and costs were added. -#}
select
    item.collection_id collection_id,
    item.short_code post_short_code,
    p.likes likes,
    p.comments comments,
    p.views views
from {{ ref('stg_coffee_post_collection_item') }} item
left join {{ ref('stg_beat_instagram_post') }} p on p.shortcode = item.short_code

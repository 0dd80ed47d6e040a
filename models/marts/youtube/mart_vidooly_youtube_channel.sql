{#- vidooly's channel data, deduplicated to the latest delivery per channel. -#}
select
    c.channel_id channel_id,
    argMax(cat.name, c.delivered_at) category,
    argMax(c.language, c.delivered_at) language,
    argMax(c.subscribers, c.delivered_at) subscribers,
    argMax(c.monthly_views, c.delivered_at) monthly_views,
    argMax(upper(c.country), c.delivered_at) country
from {{ source('vidooly', 'youtube_channel') }} c
left join {{ source('vidooly', 'youtube_channel_category') }} cat on cat.id = c.category_id
group by c.channel_id

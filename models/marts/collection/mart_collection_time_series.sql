{#- Daily totals of every collection, for the campaign report chart. -#}
select
    collection_id,
    date,
    sum(likes) likes,
    sum(comments) comments,
    sum(views) views,
    sum(plays) plays,
    uniqExact(post_short_code) posts,
    countIf(is_fake) fake_points
from {{ ref('mart_collection_post_ts') }}
group by collection_id, date

{#- Daily metrics of every collection post since it joined the collection: beat's post
    log, with today's synthetic points where the post was not re-scraped. -#}
with items as (
    select collection_id, short_code, created_at
    from {{ ref('stg_coffee_post_collection_item') }}
),
logged as (
    select
        shortcode,
        toDate(created_at) date,
        argMax(likes, created_at) likes,
        argMax(comments, created_at) comments,
        argMax(views, created_at) views,
        argMax(plays, created_at) plays
    from {{ ref('stg_beat_post_log') }}
    where shortcode in (select short_code from items)
    group by shortcode, date
)
select
    i.collection_id collection_id,
    l.shortcode post_short_code,
    l.date date,
    l.likes likes,
    l.comments comments,
    l.views views,
    l.plays plays,
    false is_fake
from logged l
inner join items i on i.short_code = l.shortcode
where l.date >= toDate(i.created_at)
union all
select collection_id, post_short_code, date, likes, comments, views, plays, is_fake
from {{ ref('mart_fake_events') }}

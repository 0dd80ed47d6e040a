{#- Synthetic daily points for collection posts that beat has not re-scraped today, so
    campaign charts have no holes. dbt_collections truncates this table before each run,
    so every run starts empty and the incremental filter only guards against duplicates
    within a run's retries. -#}
with items as (
    select collection_id, short_code, platform
    from {{ ref('stg_coffee_post_collection_item') }}
    where created_at >= now() - INTERVAL 6 MONTH
),
logged_today as (
    select distinct shortcode
    from {{ ref('stg_beat_post_log') }}
    where created_at >= today()
),
latest as (
    select shortcode, argMax(likes, updated_at) likes, argMax(comments, updated_at) comments,
           argMax(views, updated_at) views, argMax(plays, updated_at) plays
    from {{ ref('stg_beat_instagram_post') }}
    group by shortcode
)
select
    i.collection_id collection_id,
    i.short_code post_short_code,
    i.platform platform,
    today() date,
    l.likes likes,
    l.comments comments,
    l.views views,
    l.plays plays,
    true is_fake
from items i
inner join latest l on l.shortcode = i.short_code
where i.short_code not in logged_today
{% if is_incremental() %}
  and (i.collection_id, i.short_code) not in (select collection_id, post_short_code from {{ this }} where date = today())
{% endif %}

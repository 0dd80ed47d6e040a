{#- Instagram posts of collections to re-scrape: recent collection items, minus posts
    attempted in the last 12 hours and posts that failed repeatedly without ever
    succeeding; never-scraped and oldest posts first.
    Changed from today's query: `failures` no longer filters `status = 'FAILED'` in its
    `where`. With that filter the `uniqExactIf(id, status = 'COMPLETE') = 0` test could never
    be false, so a post that failed twice was dropped for a month even after a successful
    scrape; without it, "2+ failures and no success" means what the write-up says it means.
    examples/today keeps the filter (docs/today.md, "Not found by stir check"). -#}
with
posts_to_scrape as (
    select short_code shortcode
    from {{ ref('stg_coffee_post_collection_item') }}
    where platform = 'INSTAGRAM'
      and post_type IN ('reels', 'image', 'carousel')
      and match(short_code, '^[0-9]*$') = 0
      and created_at >= now() - INTERVAL 2 MONTH
),
attempted_recently as (
    SELECT JSONExtractString(params, 'shortcode') as shortcode
    from {{ source('_e', 'scrape_request_log_events') }}
    where flow = 'refresh_post_by_shortcode'
      and event_timestamp >= now() - INTERVAL 12 HOUR
),
failures as (
    SELECT JSONExtractString(params, 'shortcode') as shortcode
    from {{ ref('stg_beat_scrape_request_log') }}
    where flow = 'refresh_post_by_shortcode'
      and created_at >= now() - INTERVAL 1 MONTH
    group by shortcode
    having uniqExactIf(id, status = 'FAILED') > 1
       and uniqExactIf(id, status = 'COMPLETE') = 0
),
candidate_set as (
    select p.shortcode shortcode, max(ip.publish_time) publish_time
    from posts_to_scrape p
    left join {{ ref('stg_beat_instagram_post') }} ip on ip.shortcode = p.shortcode
    where p.shortcode not in (select shortcode from attempted_recently)
      and p.shortcode not in (select shortcode from failures)
    group by p.shortcode
)
select * from candidate_set
order by publish_time asc nulls first
LIMIT 250

{#- Instagram posts of collections to re-scrape: recent collection items, minus posts
    attempted in the last 12 hours and posts that failed repeatedly; never-scraped and oldest
    posts first. `posts_to_scrape`, `attempted_recently` and `failures` are the write-up's
    query as written (section 6), `status = 'FAILED'` filter included: with it, the
    `uniqExactIf(id, status = 'COMPLETE') = 0` test is always true, so a post is dropped after
    two failures even if it was scraped since (the fixed copy in models/requests/ drops the
    filter; docs/today.md, "Not found by stir check"). The write-up selects from
    `candidate_set` without showing it: that CTE is reconstructed. -#}
with
posts_to_scrape as (
    select short_code shortcode
    from dbt.stg_coffee_post_collection_item
    where platform = 'INSTAGRAM'
      and post_type IN ('reels', 'image', 'carousel')
      and match(short_code, '^[0-9]*$') = 0
      and created_at >= now() - INTERVAL 2 MONTH
),
attempted_recently as (
    SELECT JSONExtractString(params, 'shortcode') as shortcode
    from _e.scrape_request_log_events
    where flow = 'refresh_post_by_shortcode'
      and event_timestamp >= now() - INTERVAL 12 HOUR
),
failures as (
    SELECT JSONExtractString(params, 'shortcode') as shortcode
    from dbt.stg_beat_scrape_request_log
    where flow = 'refresh_post_by_shortcode'
      and status = 'FAILED'
      and created_at >= now() - INTERVAL 1 MONTH
    group by shortcode
    having uniqExactIf(id, status = 'FAILED') > 1
       and uniqExactIf(id, status = 'COMPLETE') = 0
),
candidate_set as (
    select p.shortcode shortcode, max(ip.publish_time) publish_time
    from posts_to_scrape p
    left join dbt.stg_beat_instagram_post ip on ip.shortcode = p.shortcode
    where p.shortcode not in (select shortcode from attempted_recently)
      and p.shortcode not in (select shortcode from failures)
    group by p.shortcode
)
select * from candidate_set
order by publish_time asc nulls first
LIMIT 250

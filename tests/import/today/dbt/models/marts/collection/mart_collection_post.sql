-- Written from /work/shared/reference/current-platform.md (issue #16): the code the write-up
-- shows for this file, as it is written there (an excerpt: the lines it elides stay elided).
-- models/marts/collection/mart_collection_post.sql (ACTUAL CODE, key sections)
{{ config(materialized = 'table', tags=["collections"],
          order_by='collection_id, post_short_code') }}

-- Story reach estimation formula
CASE
    WHEN item.created_at < '2023-11-22' THEN
        round((-0.000025017) * sd.profile_follower
              + (1.11 * (sd.profile_follower * abs(log2(sd.profile_er)) * 2 / 100)))
    ELSE
        round((-0.000025017) * sd.profile_follower
              + (1.11 * (sd.profile_follower * abs(log2((sd.profile_er + 2))) * 2 / 100)))
END AS _story_reach,

-- Latest values using argMax
story_data as (
    select shortcode,
           argMax(profile_follower, updated_at) profile_follower,
           argMax(profile_er, updated_at) profile_er
    from dbt.stg_beat_instagram_post
    where shortcode in items_shortcode
    group by shortcode
),

-- Hashtag normalization using arrayMap
arrayMap(x -> lower(x), hashtags) hashtags

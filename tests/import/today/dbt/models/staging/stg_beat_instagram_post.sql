{{ config(tags=['post_ranker_partial'], order_by='(profile_id, shortcode)') }}
-- A stand-in (the write-up names this model but does not show it): read by name by mart_collection_post.
select * from {{ source('beat_replica', 'instagram_post') }}

{{ config(tags=['post_ranker'], order_by='profile_id') }}
-- A stand-in (the write-up names this model but does not show it): read by mart_instagram_account_summary.
select profile_id, shortcode as post_shortcode from {{ ref('stg_beat_instagram_post') }}

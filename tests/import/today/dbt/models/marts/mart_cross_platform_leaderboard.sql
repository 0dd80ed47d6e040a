{{ config(tags=['daily'], order_by='platform_id') }}
-- A stand-in (the write-up names this model but does not show it): read by mart_leaderboard.
select ig_id as platform_id, followers from {{ ref('mart_instagram_account') }}

{{ config(tags=['daily', 'leaderboard'], order_by='platform_id') }}
select ig_id as platform_id, followers from {{ ref('mart_instagram_account') }}

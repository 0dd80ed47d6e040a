{{ config(tags=['daily', 'weekly'], order_by='platform_id') }}
select platform_id, max(followers) as followers from {{ ref('mart_leaderboard') }} group by platform_id

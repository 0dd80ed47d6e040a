{{ config(order_by='platform_id') }}
-- A stand-in (the write-up names this model but does not show it): read by mart_instagram_account.
select id as platform_id, followers from {{ ref('stg_beat_instagram_account') }}

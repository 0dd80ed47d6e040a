{{ config(tags=['hourly'], order_by='ig_id') }}
select id as ig_id, followers from {{ ref('stg_beat_instagram_account') }}

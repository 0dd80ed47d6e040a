{{ config(tags=['core'], order_by='profile_id') }}
select id as profile_id, followers from {{ ref('stg_beat_instagram_account') }}

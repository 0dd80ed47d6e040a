{{ config(tags=['post_ranker'], order_by='profile_id') }}
select id as profile_id, avg(followers) as followers from {{ ref('stg_beat_instagram_account') }} group by profile_id

{{ config(tags=['collections'], order_by='post_link') }}
select '' as post_link, ts from {{ ref('mart_fake_events') }}

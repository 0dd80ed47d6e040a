{{ config(tags=["recent_scl"], order_by='id') }}
select * from {{ source('beat_replica', 'scrape_request_log') }}

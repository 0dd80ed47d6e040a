with
data as (
    select * from {{ source('beat_replica', 'instagram_account') }}
)
select * from data

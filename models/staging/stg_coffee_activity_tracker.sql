with
data as (
    select
        id,
        account_id,
        user_id,
        event,
        feature,
        properties,
        created_at
    from {{ source('coffee', 'activity_tracker') }}
    where created_at >= now() - INTERVAL 1 YEAR
)
select * from data

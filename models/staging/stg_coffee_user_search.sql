with
data as (
    select
        id,
        account_id,
        user_id,
        platform,
        query,
        filters,
        results,
        created_at
    from {{ source('coffee', 'user_search') }}
    where created_at >= now() - INTERVAL 6 MONTH
)
select * from data

with
data as (
    select
        id,
        name,
        brand_id,
        account_id,
        status,
        budget,
        start_date,
        end_date,
        created_at
    from {{ source('coffee', 'campaign') }}
    where deleted_at is null
)
select * from data

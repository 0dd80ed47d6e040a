with
data as (
    select
        id,
        campaign_id,
        upper(platform) platform,
        platform_id,
        lower(handle) handle,
        status,
        agreed_cost,
        deliverables,
        created_at,
        updated_at
    from {{ source('coffee', 'campaign_profiles') }}
    where deleted_at is null
)
select * from data

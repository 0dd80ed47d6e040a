with
data as (
    select
        id,
        name,
        share_id,
        account_id,
        brand_id,
        campaign_id,
        collection_type,
        budget,
        start_date,
        end_date,
        is_active,
        created_at,
        updated_at
    from {{ source('coffee', 'post_collection') }}
    where deleted_at is null
)
select * from data

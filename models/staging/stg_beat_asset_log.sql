with
data as (
    select
        id,
        entity_type,
        entity_id,
        source_url,
        asset_url,
        status,
        attempts,
        created_at,
        updated_at
    from {{ source('beat_replica', 'asset_log') }}
    where created_at >= now() - INTERVAL 1 MONTH
)
select * from data

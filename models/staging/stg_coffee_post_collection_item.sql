with
data as (
    select
        id,
        collection_id,
        upper(platform) platform,
        short_code,
        lower(post_type) post_type,
        post_link,
        profile_social_id,
        cost,
        show_in_report,
        is_fake,
        created_at,
        updated_at
    from {{ source('coffee', 'post_collection_item') }}
    where deleted_at is null
)
select * from data

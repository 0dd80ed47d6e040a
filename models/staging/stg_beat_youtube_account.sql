with
data as (
    select
        channel_id,
        handle,
        title,
        description,
        thumbnail,
        country,
        category,
        language,
        subscribers,
        views,
        uploads,
        published_at,
        created_at,
        updated_at
    from {{ source('beat_replica', 'youtube_account') }}
)
select * from data

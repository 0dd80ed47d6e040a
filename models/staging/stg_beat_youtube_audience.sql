with
data as (
    select
        channel_id,
        argMax(a.gender, a.updated_at) gender,
        argMax(a.age, a.updated_at) age,
        argMax(a.countries, a.updated_at) countries,
        max(a.updated_at) updated_at
    from {{ source('beat_replica', 'youtube_audience') }} a
    group by channel_id
)
select * from data

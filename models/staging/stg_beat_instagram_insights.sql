with
data as (
    select
        profile_id,
        toDate(end_time) date,
        argMax(impressions, updated_at) impressions,
        argMax(reach, updated_at) reach,
        argMax(profile_views, updated_at) profile_views,
        argMax(website_clicks, updated_at) website_clicks
    from {{ source('beat_replica', 'instagram_insights') }}
    group by profile_id, date
)
select * from data

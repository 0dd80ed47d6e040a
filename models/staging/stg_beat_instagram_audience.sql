with
data as (
    select
        profile_id,
        argMax(a.gender, a.updated_at) gender,
        argMax(a.age, a.updated_at) age,
        argMax(a.cities, a.updated_at) cities,
        argMax(a.countries, a.updated_at) countries,
        argMax(a.reachability, a.updated_at) reachability,
        argMax(a.authenticity, a.updated_at) authenticity,
        max(a.updated_at) updated_at
    from {{ source('beat_replica', 'instagram_audience') }} a
    group by profile_id
)
select * from data

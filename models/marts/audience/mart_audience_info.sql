{#- Audience summary of every profile on both platforms, as the app shows it. -#}
with instagram as (
    select
        'INSTAGRAM' platform,
        a.profile_id platform_id,
        map('male', g.male_share, 'female', g.female_share, 'other', g.other_share) gender_split,
        map('13-17', ag.age_13_17, '18-24', ag.age_18_24, '25-34', ag.age_25_34,
            '35-44', ag.age_35_44, '45+', ag.age_45_plus) age_split,
        c.top_cities top_cities,
        r.audience_reachability audience_reachability,
        au.audience_authencity audience_authencity
    from {{ ref('stg_beat_instagram_audience') }} a
    left join {{ ref('mart_instagram_audience_gender') }} g on g.profile_id = a.profile_id
    left join {{ ref('mart_instagram_audience_age') }} ag on ag.profile_id = a.profile_id
    left join (
        select profile_id, groupArray(10)((city, share)) top_cities
        from (select * from {{ ref('mart_instagram_audience_city') }} order by profile_id, city_rank)
        group by profile_id
    ) c on c.profile_id = a.profile_id
    left join {{ ref('mart_audience_reachability') }} r on r.profile_id = a.profile_id
    left join {{ ref('mart_audience_authenticity') }} au on au.profile_id = a.profile_id
),
youtube as (
    select
        'YOUTUBE' platform,
        y.channel_id platform_id,
        map('male', y.male_share, 'female', y.female_share, 'other', greatest(0, 1 - y.male_share - y.female_share)) gender_split,
        map('18-24', y.age_18_24, '25-34', y.age_25_34) age_split,
        [(y.top_country, y.india_share)] top_cities,
        CAST(NULL, 'Nullable(Float64)') audience_reachability,
        CAST(NULL, 'Nullable(Float64)') audience_authencity
    from {{ ref('mart_youtube_audience_demographics') }} y
)
select * from instagram
union all
select * from youtube

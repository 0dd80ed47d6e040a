{#- Profiles gaining fastest this week, per platform, for the discovery home page. -#}
with instagram as (
    select
        'INSTAGRAM' platform,
        ig_id platform_id,
        handle,
        category,
        followers,
        followers_growth7d growth_7d,
        followers_growth7d / greatest(followers - followers_growth7d, 1) growth_rate_7d
    from {{ ref('mart_instagram_account') }}
    where followers >= 10000 and followers_growth7d > 0
),
youtube as (
    select
        'YOUTUBE' platform,
        channelid platform_id,
        handle,
        category,
        followers,
        followers_growth30d / 4 growth_7d,
        (followers_growth30d / 4) / greatest(followers - followers_growth30d, 1) growth_rate_7d
    from {{ ref('mart_youtube_account') }}
    where followers >= 10000 and followers_growth30d > 0
),
combined as (
    select * from instagram
    union all
    select * from youtube
)
select *
from (
    select
        *,
        row_number() over (partition by platform order by growth_rate_7d desc) trend_rank
    from combined
)
where trend_rank <= 500

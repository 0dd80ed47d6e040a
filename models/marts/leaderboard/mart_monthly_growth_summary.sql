with growth as (
    select month, 'INSTAGRAM' platform, followers_change / greatest(followers - followers_change, 1) growth
    from {{ ref('mart_insta_account_monthly') }}
    where followers_change is not null
    union all
    select month, 'YOUTUBE' platform, followers_change / greatest(followers - followers_change, 1) growth
    from {{ ref('mart_yt_account_monthly') }}
    where followers_change is not null
)
select
    month,
    platform,
    count() profiles,
    quantile(0.5)(growth) median_growth,
    quantile(0.9)(growth) p90_growth
from growth
where month >= addMonths(toStartOfMonth(today()), -24)
group by month, platform

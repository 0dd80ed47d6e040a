select
    a.category category,
    count() channels,
    avg(a.followers) avg_subscribers,
    avg(a.avg_views) avg_views,
    quantile(0.9)(a.avg_views) p90_views
from {{ ref('mart_youtube_account') }} a
where a.category != ''
group by a.category

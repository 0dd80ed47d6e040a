select
    channelid,
    handle,
    title,
    country,
    category,
    language,
    followers,
    avg_views,
    engagement_rate,
    splitByWhitespace(ifNull(concat(lower(title), ' ', lower(handle)), '')) keywords,
    concat(lower(handle), ' ', lower(ifNull(title, ''))) search_phrase,
    log10(greatest(followers, 1)) * log10(greatest(avg_views, 1) + 1) relevance_boost
from {{ ref('mart_youtube_account') }}
where followers >= 1000

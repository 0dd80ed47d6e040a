{#- Search index for Instagram discovery: keywords, filters and a relevance boost. -#}
select
    ig_id,
    handle,
    name,
    country,
    category,
    language,
    city,
    followers,
    engagement_rate,
    follower_group,
    arrayDistinct(arrayConcat(
        keywords,
        splitByWhitespace(lower(ifNull(category, ''))),
        splitByWhitespace(lower(ifNull(city, '')))
    )) keywords,
    concat(lower(handle), ' ', lower(ifNull(name, ''))) search_phrase,
    log10(greatest(followers, 1)) * greatest(engagement_rate, 0.1) relevance_boost,
    is_verified
from {{ ref('mart_instagram_account') }}
where followers >= 1000

{#- The category filter of the leaderboard pages: categories with enough ranked
    profiles, in the product's display order. -#}
with counts as (
    select platform, category, uniqExact(platform_id) profiles
    from {{ ref('mart_leaderboard') }}
    where month = (select max(month) from {{ ref('mart_leaderboard') }})
    group by platform, category
)
select
    c.platform platform,
    c.category category,
    c.profiles profiles,
    toInt32(ifNull(cat.display_order, 999)) display_order
from counts c
left join {{ ref('stg_coffee_category') }} cat on lower(cat.name) = lower(c.category)
where c.profiles >= 50

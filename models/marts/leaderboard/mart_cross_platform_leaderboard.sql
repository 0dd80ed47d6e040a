{#- Creators present on both platforms (linked socials), ranked on combined reach. -#}
{%- set rank_metrics = ["followers", "followers_change", "views", "plays", "likes", "comments", "engagement"] -%}
{%- set dims = [["", ""], ["_by_cat", ", category"], ["_by_lang", ", language"], ["_by_cat_lang", ", category, language"]] -%}
with
links as (
    select handle, any(channel_id) channel_id
    from {{ ref('mart_linked_socials') }}
    group by handle
),
combined as (
    select
        ig.month month,
        ig.platform_id platform_id,
        ig.handle handle,
        ig.category category,
        ig.language language,
        ig.country country,
        'CROSS_PLATFORM' profile_type,
        ig.followers + ifNull(yt.followers, 0) followers,
        ig.followers_change + ifNull(yt.followers_change, 0) followers_change,
        ig.views + ifNull(yt.views, 0) views,
        ig.plays + ifNull(yt.plays, 0) plays,
        ig.likes + ifNull(yt.likes, 0) likes,
        ig.comments + ifNull(yt.comments, 0) comments,
        ig.engagement + ifNull(yt.engagement, 0) engagement,
        ig.engagement_rate engagement_rate,
        ig.avg_likes avg_likes,
        ig.avg_comments avg_comments,
        ig.avg_views avg_views,
        ig.avg_plays avg_plays
    from {{ ref('mart_instagram_leaderboard') }} ig
    inner join links l on l.handle = ig.handle
    inner join {{ ref('mart_youtube_leaderboard') }} yt
        on yt.platform_id = l.channel_id and yt.month = ig.month
),
ranked as (
    select
        *,
        {% for metric in rank_metrics %}{% set last_metric = loop.last %}{% for dim in dims %}
        rank() over (partition by month{{ dim[1] }} order by {{ metric }} desc) {{ metric }}_rank{{ dim[0] }}{{ "," if not (loop.last and last_metric) }}
        {% endfor %}{% endfor %}
    from combined
),
prev as (
    select
        addMonths(month, 1) next_month,
        platform_id,
        {% for metric in rank_metrics %}{% set last_metric = loop.last %}{% for dim in dims %}
        {{ metric }}_rank{{ dim[0] }} {{ metric }}_rank{{ dim[0] }}_prev{{ "," if not (loop.last and last_metric) }}
        {% endfor %}{% endfor %}
    from ranked
)
select
    cur.*,
    {% for metric in rank_metrics %}{% set last_metric = loop.last %}{% for dim in dims %}
    prev.{{ metric }}_rank{{ dim[0] }}_prev {{ metric }}_rank{{ dim[0] }}_prev{{ "," if not (loop.last and last_metric) }}
    {% endfor %}{% endfor %}
from ranked cur
left join prev on prev.platform_id = cur.platform_id and prev.next_month = cur.month

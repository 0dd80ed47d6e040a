{#- Monthly YouTube leaderboard of Indian channels; same rank columns as the Instagram one
    (plays are Shorts views, followers are subscribers). -#}
{%- set rank_metrics = ["followers", "followers_change", "views", "plays", "likes", "comments", "engagement"] -%}
{%- set dims = [["", ""], ["_by_cat", ", category"], ["_by_lang", ", language"], ["_by_cat_lang", ", category, language"]] -%}
with
channels as (
    select channelid, handle, category, language, country
    from {{ ref('mart_youtube_account') }}
    where country = 'IN'
),
monthly as (
    select
        m.month month,
        m.platform_id platform_id,
        c.handle handle,
        ifNull(c.category, 'MISSING') category,
        ifNull(c.language, 'MISSING') language,
        c.country country,
        'CHANNEL' profile_type,
        m.followers followers,
        ifNull(m.followers_change, 0) followers_change,
        ifNull(m.views_change, 0) views,
        m.plays plays,
        m.likes likes,
        m.comments comments,
        m.engagement engagement,
        m.engagement_rate engagement_rate,
        m.avg_likes avg_likes,
        m.avg_comments avg_comments,
        m.avg_views avg_views,
        m.avg_plays avg_plays
    from {{ ref('mart_yt_account_monthly') }} m
    inner join channels c on c.channelid = m.platform_id
    where m.month >= addMonths(toStartOfMonth(today()), -13)
),
ranked as (
    select
        *,
        {% for metric in rank_metrics %}{% set last_metric = loop.last %}{% for dim in dims %}
        rank() over (partition by month{{ dim[1] }} order by {{ metric }} desc) {{ metric }}_rank{{ dim[0] }}{{ "," if not (loop.last and last_metric) }}
        {% endfor %}{% endfor %}
    from monthly
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
where cur.month >= addMonths(toStartOfMonth(today()), -12)

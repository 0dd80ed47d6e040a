{#- One row per YouTube channel for discovery, with vidooly's category where beat has none. -#}
with summary as (
    select * from {{ ref('mart_youtube_account_summary') }}
),
vidooly as (
    select channel_id, category vidooly_category, language vidooly_language
    from {{ ref('mart_vidooly_youtube_channel') }}
),
growth as (
    select
        platform_id channel_id,
        argMax(followers, date) cur_subscribers,
        cur_subscribers - argMaxIf(followers, date, date < toStartOfWeek(now()) - INTERVAL 30 DAY) subscribers_growth30d,
        cur_subscribers - argMaxIf(followers, date, date < toStartOfWeek(now()) - INTERVAL 90 DAY) subscribers_growth90d
    from {{ ref('mart_yt_account_weekly') }}
    group by platform_id
)
select
    ya.channel_id channelid,
    ya.handle handle,
    ya.title title,
    ya.thumbnail thumbnail,
    ifNull(nullIf(ya.country, ''), 'MISSING') country,
    coalesce(nullIf(ya.category, ''), v.vidooly_category) category,
    coalesce(nullIf(ya.language, ''), v.vidooly_language) language,
    ya.subscribers followers,
    ya.views total_views,
    ya.uploads uploads,
    s.avg_views avg_views,
    s.avg_likes avg_likes,
    s.avg_comments avg_comments,
    s.engagement_rate engagement_rate,
    s.uploads_per_week uploads_per_week,
    g.subscribers_growth30d followers_growth30d,
    g.subscribers_growth90d followers_growth90d,
    rank() over (partition by country order by ya.subscribers desc) country_rank,
    rank() over (partition by country, category order by ya.subscribers desc) category_rank,
    ya.updated_at updated_at
from {{ ref('stg_beat_youtube_account') }} ya
left join summary s on s.channel_id = ya.channel_id
left join vidooly v on v.channel_id = ya.channel_id
left join growth g on g.channel_id = ya.channel_id

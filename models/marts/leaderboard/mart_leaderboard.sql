{#- The leaderboard the app serves: Instagram, YouTube and cross-platform rankings in one
    table. The 28 rank dimensions of this month and last month travel as two
    Map(String, UInt64) columns (jsonb in PostgreSQL). The memory settings of the original
    model's SETTINGS clause (external group by / sort, partial_merge join) are declared on
    the model in stir.kdl. -#}
{%-
    set ranks = [
        "followers_rank", "followers_rank_by_cat", "followers_rank_by_lang", "followers_rank_by_cat_lang",
        "followers_change_rank", "followers_change_rank_by_cat", "followers_change_rank_by_lang", "followers_change_rank_by_cat_lang",
        "views_rank", "views_rank_by_cat", "views_rank_by_lang", "views_rank_by_cat_lang",
        "plays_rank", "plays_rank_by_cat", "plays_rank_by_lang", "plays_rank_by_cat_lang",
        "likes_rank", "likes_rank_by_cat", "likes_rank_by_lang", "likes_rank_by_cat_lang",
        "comments_rank", "comments_rank_by_cat", "comments_rank_by_lang", "comments_rank_by_cat_lang",
        "engagement_rank", "engagement_rank_by_cat", "engagement_rank_by_lang", "engagement_rank_by_cat_lang"
    ]
-%}
{%-
    set boards = [
        ["IA", "INSTAGRAM", ref('mart_instagram_leaderboard')],
        ["YA", "YOUTUBE", ref('mart_youtube_leaderboard')],
        ["CP", "CROSS_PLATFORM", ref('mart_cross_platform_leaderboard')]
    ]
-%}
{% for board in boards %}
-- {{ board[1] | lower }} leaderboard
select
    toInt64(cityHash64(month, '{{ board[0] }}', platform_id) % 9223372036854775807) id,
    month,
    '{{ board[0] }}' profile_platform,
    language, category,
    ifNull(platform, 'MISSING') platform,
    profile_type,
    handle,
    country,
    platform_id,
    followers, engagement_rate, avg_likes, avg_comments, avg_views, avg_plays,
    followers_rank, followers_change_rank, views_rank,
    -- Per-dimension ranks
    followers_rank_by_cat, views_rank_by_cat,
    followers_rank_by_lang, views_rank_by_lang,
    followers_rank_by_cat_lang, views_rank_by_cat_lang,
    -- Previous month ranks stored as ClickHouse Map type
    CAST(map(
        {% for r in ranks %}
        '{{ r }}', toUInt64(ifNull({{ r }}_prev, 0)){{ "," if not loop.last }}
        {% endfor %}
    ), 'Map(String, UInt64)') last_month_ranks,
    CAST(map(
        {% for r in ranks %}
        '{{ r }}', toUInt64(ifNull({{ r }}, 0)){{ "," if not loop.last }}
        {% endfor %}
    ), 'Map(String, UInt64)') current_month_ranks
from (
    select *, '{{ board[1] }}' platform
    from {{ board[2] }}
)
{% if not loop.last %}
UNION ALL
{% endif %}
{% endfor %}

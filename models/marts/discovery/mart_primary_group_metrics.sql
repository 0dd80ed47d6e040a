{#- Percentiles of every graded metric within each follower group: the yardstick for
    the Excellent / Very Good / Good / Average / Poor grades in mart_instagram_account. -#}
{%
    set metrics = [
        "avg_likes", "avg_comments", "comments_rate", "followers",
        "engagement_rate", "reels_reach", "image_reach", "story_reach",
        "reels_impressions", "image_impressions", "likes_to_comment_ratio",
        "followers_growth7d", "followers_growth30d", "followers_growth90d",
        "audience_reachability", "audience_authencity", "post_count",
        "likes_spread", "avg_posts_per_week"
    ]
%}
with growth as (
    select
        profile_id,
        argMax(followers, week) - argMaxIf(followers, week, week < toStartOfWeek(now()) - INTERVAL 7 DAY) followers_growth7d,
        argMax(followers, week) - argMaxIf(followers, week, week < toStartOfWeek(now()) - INTERVAL 30 DAY) followers_growth30d,
        argMax(followers, week) - argMaxIf(followers, week, week < toStartOfWeek(now()) - INTERVAL 90 DAY) followers_growth90d
    from {{ ref('mart_insta_account_weekly') }}
    group by profile_id
),
profiles as (
    select
        stats.*,
        g.followers_growth7d followers_growth7d,
        g.followers_growth30d followers_growth30d,
        g.followers_growth90d followers_growth90d,
        aud.audience_reachability audience_reachability,
        aud.audience_authencity audience_authencity,
        multiIf(
            stats.followers < 5000, '0-5k',
            stats.followers < 10000, '5k-10k',
            stats.followers < 50000, '10k-50k',
            stats.followers < 100000, '50k-100k',
            stats.followers < 500000, '100k-500k',
            stats.followers < 1000000, '500k-1M',
            '1M+'
        ) group_key
    from {{ ref('mart_instagram_account_summary') }} stats
    left join growth g on g.profile_id = stats.profile_id
    left join {{ ref('mart_audience_info') }} aud
        on aud.platform_id = stats.profile_id and aud.platform = 'INSTAGRAM'
)
select
    group_key,
    count() group_size,
    {% for metric in metrics %}
    quantileIf(0.90)({{ metric }}, {{ metric }} > 0 and isFinite({{ metric }})) p90_{{ metric }},
    quantileIf(0.75)({{ metric }}, {{ metric }} > 0 and isFinite({{ metric }})) p75_{{ metric }},
    quantileIf(0.60)({{ metric }}, {{ metric }} > 0 and isFinite({{ metric }})) p60_{{ metric }},
    quantileIf(0.40)({{ metric }}, {{ metric }} > 0 and isFinite({{ metric }})) p40_{{ metric }},
    avgIf({{ metric }}, {{ metric }} > 0 and isFinite({{ metric }})) group_avg_{{ metric }}{{ "," if not loop.last }}
    {% endfor %}
from profiles
group by group_key

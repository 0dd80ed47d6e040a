-- Written from /work/shared/reference/current-platform.md (issue #16): the code the write-up
-- shows for this file, as it is written there (an excerpt: the lines it elides stay elided).
-- models/marts/discovery/mart_instagram_account.sql (ACTUAL CODE, key sections)
{{ config(materialized = 'table', tags=["hourly"], order_by='ig_id') }}
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

-- CTE 1: Linked socials (Instagram <-> YouTube)
with links as (
    select handle, max(channel_id) channel_id, max(category) category
    from dbt.mart_linked_socials
    group by handle
),

-- CTE 2: Overtime growth using argMaxIf for time-windowed metrics
overtime_growth as (
    select
        platform_id profile_id,
        argMax(followers, date) cur_followers,
        argMaxIf(followers, date, date < toStartOfWeek(now()) - INTERVAL 7 DAY) followers_7d,
        argMaxIf(followers, date, date < toStartOfWeek(now()) - INTERVAL 30 DAY) followers_30d,
        argMaxIf(followers, date, date < toStartOfWeek(now()) - INTERVAL 90 DAY) followers_90d,
        argMaxIf(followers, date, date < toStartOfWeek(now()) - INTERVAL 1 YEAR) followers_1y,
        cur_followers - followers_7d followers_growth_7d,
        cur_followers - followers_30d followers_growth_30d,
        cur_followers - followers_90d followers_growth_90d,
        cur_followers - followers_1y followers_growth_1y
    from dbt.mart_insta_account_weekly
    group by profile_id
),

-- CTE 3: Follower grouping for performance grading
semi_final as (
    select
        -- ... 50+ fields including:
        multiIf(
            followers < 5000, '0-5k',
            followers < 10000, '5k-10k',
            followers < 50000, '10k-50k',
            followers < 100000, '50k-100k',
            followers < 500000, '100k-500k',
            followers < 1000000, '500k-1M',
            '1M+'
        ) follower_group,

        -- Ranking within country/category
        rank() over (partition by country order by followers desc) country_rank,
        rank() over (partition by country, category order by followers desc) category_rank,
    from {{ref('mart_instagram_account_summary')}} stats
    left join {{ref('stg_beat_instagram_account')}} ia on ia.profile_id = stats.profile_id
    left join {{ref('mart_audience_info')}} aud on aud.platform_id = ia.profile_id
    -- ... 10+ more joins
),

-- CTE 4: Dedup using argMax (ClickHouse pattern for latest value per group)
final_without_group_metrics as (
    select
        handle,
        max(updated_at) _updated_at,
        argMax(name, updated_at) name,
        argMax(ig_id, updated_at) ig_id,
        argMax(followers, updated_at) followers,
        argMax(engagement_rate, updated_at) engagement_rate,
        argMax(country, updated_at) country,
        argMax(category_rank, updated_at) category_rank,
        -- ... 50+ argMax columns
    from final_without_group_metrics_with_dups
    group by handle
),

-- CTE 5: Performance grading using Jinja loop + percentile buckets
final as (
    select
        *,
        {% for metric in metrics %}
            multiIf(
                {{metric}} is null or {{metric}} == 0
                    or isInfinite({{metric}}) or isNaN({{metric}}), NULL,
                {{metric}} > gm.p90_{{metric}}, 'Excellent',
                {{metric}} > gm.p75_{{metric}}, 'Very Good',
                {{metric}} > gm.p60_{{metric}}, 'Good',
                {{metric}} > gm.p40_{{metric}}, 'Average',
                'Poor'
            ) {{metric}}_grade,
            gm.group_avg_{{metric}} group_avg_{{metric}},
        {% endfor %}
        group_key
    from final_without_group_metrics
    left join dbt.mart_primary_group_metrics gm
        on gm.group_key = final_without_group_metrics.group_key
)
select * from final
order by followers desc

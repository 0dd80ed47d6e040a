{#- The master influencer profile behind discovery search: one row per Instagram handle. -#}
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
    from {{ ref('mart_linked_socials') }}
    group by handle
),

-- CTE 2: Overtime growth using argMaxIf for time-windowed metrics
overtime_growth as (
    select
        profile_id,
        argMax(followers, week) cur_followers,
        argMaxIf(followers, week, week < toStartOfWeek(now()) - INTERVAL 7 DAY) followers_7d,
        argMaxIf(followers, week, week < toStartOfWeek(now()) - INTERVAL 30 DAY) followers_30d,
        argMaxIf(followers, week, week < toStartOfWeek(now()) - INTERVAL 90 DAY) followers_90d,
        argMaxIf(followers, week, week < toStartOfWeek(now()) - INTERVAL 1 YEAR) followers_1y,
        cur_followers - followers_7d followers_growth_7d,
        cur_followers - followers_30d followers_growth_30d,
        cur_followers - followers_90d followers_growth_90d,
        cur_followers - followers_1y followers_growth_1y
    from {{ ref('mart_insta_account_weekly') }}
    group by profile_id
),

categories as (
    select profile_id, category predicted_category, confidence category_confidence
    from {{ ref('mart_instagram_creator_categories') }}
),

locations as (
    select profile_id, city, state
    from {{ ref('mart_instagram_location') }}
),

-- CTE 3: Follower grouping for performance grading
semi_final as (
    select
        ia.handle handle,
        ia.updated_at updated_at,
        ia.name name,
        ia.ig_id ig_id,
        ia.profile_id profile_id,
        ia.thumbnail thumbnail,
        ia.bio bio,
        ia.is_verified is_verified,
        ifNull(nullIf(ia.country, ''), 'MISSING') country,
        coalesce(nullIf(links.category, ''), nullIf(cat.predicted_category, ''), ia.category) category,
        ia.language language,
        loc.city city,
        loc.state state,
        links.channel_id linked_channel_id,
        stats.followers followers,
        stats.avg_likes avg_likes,
        stats.avg_comments avg_comments,
        stats.comments_rate comments_rate,
        stats.engagement_rate engagement_rate,
        stats.reels_reach reels_reach,
        stats.image_reach image_reach,
        stats.story_reach story_reach,
        stats.reels_impressions reels_impressions,
        stats.image_impressions image_impressions,
        stats.likes_to_comment_ratio likes_to_comment_ratio,
        stats.post_count post_count,
        stats.likes_spread likes_spread,
        stats.avg_posts_per_week avg_posts_per_week,
        stats.avg_views avg_views,
        stats.avg_plays avg_plays,
        og.followers_growth_7d followers_growth7d,
        og.followers_growth_30d followers_growth30d,
        og.followers_growth_90d followers_growth90d,
        og.followers_growth_1y followers_growth1y,
        aud.audience_reachability audience_reachability,
        aud.audience_authencity audience_authencity,
        aud.gender_split audience_gender,
        multiIf(
            stats.followers < 5000, '0-5k',
            stats.followers < 10000, '5k-10k',
            stats.followers < 50000, '10k-50k',
            stats.followers < 100000, '50k-100k',
            stats.followers < 500000, '100k-500k',
            stats.followers < 1000000, '500k-1M',
            '1M+'
        ) follower_group,
        follower_group group_key,

        -- Ranking within country/category
        rank() over (partition by country order by stats.followers desc) country_rank,
        rank() over (partition by country, category order by stats.followers desc) category_rank
    from {{ ref('mart_instagram_account_summary') }} stats
    left join {{ ref('stg_beat_instagram_account') }} ia on ia.profile_id = stats.profile_id
    left join {{ ref('mart_audience_info') }} aud on aud.platform_id = ia.profile_id and aud.platform = 'INSTAGRAM'
    left join overtime_growth og on og.profile_id = stats.profile_id
    left join links on links.handle = ia.handle
    left join categories cat on cat.profile_id = stats.profile_id
    left join locations loc on loc.profile_id = stats.profile_id
    where ia.handle != ''
),

final_without_group_metrics_with_dups as (
    select * from semi_final
),

-- CTE 4: Dedup using argMax (ClickHouse pattern for latest value per group)
final_without_group_metrics as (
    select
        handle,
        max(updated_at) _updated_at,
        argMax(name, updated_at) name,
        argMax(ig_id, updated_at) ig_id,
        argMax(profile_id, updated_at) profile_id,
        argMax(thumbnail, updated_at) thumbnail,
        argMax(bio, updated_at) bio,
        argMax(is_verified, updated_at) is_verified,
        argMax(country, updated_at) country,
        argMax(category, updated_at) category,
        argMax(language, updated_at) language,
        argMax(city, updated_at) city,
        argMax(state, updated_at) state,
        argMax(linked_channel_id, updated_at) linked_channel_id,
        argMax(country_rank, updated_at) country_rank,
        argMax(category_rank, updated_at) category_rank,
        argMax(follower_group, updated_at) follower_group,
        argMax(group_key, updated_at) group_key,
        argMax(avg_views, updated_at) avg_views,
        argMax(avg_plays, updated_at) avg_plays,
        argMax(followers_growth1y, updated_at) followers_growth1y,
        argMax(audience_gender, updated_at) audience_gender,
        {% for metric in metrics %}
        argMax({{ metric }}, updated_at) {{ metric }},
        {% endfor %}
        splitByWhitespace(ifNull(concat(lower(name), ' ', lower(handle)), '')) keywords
    from final_without_group_metrics_with_dups
    group by handle
),

-- CTE 5: Performance grading using Jinja loop + percentile buckets
final as (
    select
        final_without_group_metrics.*,
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
        gm.group_size group_size
    from final_without_group_metrics
    left join {{ ref('mart_primary_group_metrics') }} gm
        on gm.group_key = final_without_group_metrics.group_key
)
select * from final
order by followers desc

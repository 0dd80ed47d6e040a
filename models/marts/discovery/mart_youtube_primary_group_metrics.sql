{%- set metrics = ["followers", "avg_views", "avg_likes", "avg_comments", "engagement_rate", "uploads_per_week"] -%}
with channels as (
    select
        s.*,
        multiIf(
            s.followers < 10000, '0-10k',
            s.followers < 100000, '10k-100k',
            s.followers < 1000000, '100k-1M',
            s.followers < 10000000, '1M-10M',
            '10M+'
        ) group_key
    from {{ ref('mart_youtube_account_summary') }} s
)
select
    group_key,
    count() group_size,
    {% for metric in metrics %}
    quantileIf(0.90)({{ metric }}, {{ metric }} > 0) p90_{{ metric }},
    quantileIf(0.75)({{ metric }}, {{ metric }} > 0) p75_{{ metric }},
    quantileIf(0.50)({{ metric }}, {{ metric }} > 0) p50_{{ metric }},
    avgIf({{ metric }}, {{ metric }} > 0) group_avg_{{ metric }}{{ "," if not loop.last }}
    {% endfor %}
from channels
group by group_key

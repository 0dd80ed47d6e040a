{#- Monthly rollup of the weekly snapshots (last snapshot of the month wins). -#}
with monthly as (
    select
        toStartOfMonth(week) month,
        profile_id,
        argMax(followers, week) followers,
        argMax(following, week) following,
        sum(uploads) uploads,
        sum(likes) likes,
        sum(comments) comments,
        sum(views) views,
        sum(plays) plays,
        sum(engagement) engagement,
        avg(avg_likes) avg_likes,
        avg(avg_comments) avg_comments,
        avg(avg_views) avg_views,
        avg(avg_plays) avg_plays,
        avg(engagement_rate) engagement_rate
    from {{ ref('mart_insta_account_weekly') }}
    {% if is_incremental() %}
    where week >= greatest((select max(month) from {{ this }}), toDate('1970-03-01')) - INTERVAL 1 MONTH
    {% endif %}
    group by month, profile_id
)
select
    *,
    addMonths(month, -1) p_month,
    followers - any(followers) over (
        partition by profile_id order by month asc
        rows between 1 preceding and 1 preceding
    ) followers_change
from monthly

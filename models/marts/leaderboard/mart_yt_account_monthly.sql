with monthly as (
    select
        toStartOfMonth(date) month,
        platform_id,
        argMax(followers, date) followers,
        argMax(following, date) following,
        argMax(views, date) views,
        argMax(uploads, date) uploads,
        sum(likes) likes,
        sum(comments) comments,
        sum(engagement) engagement,
        sum(plays) plays,
        avg(avg_views) avg_views,
        avg(avg_likes) avg_likes,
        avg(avg_comments) avg_comments,
        avg(avg_plays) avg_plays,
        avg(engagement_rate) engagement_rate
    from {{ ref('mart_yt_account_weekly') }}
    {% if is_incremental() %}
    where date >= greatest((select max(month) from {{ this }}), toDate('1970-03-01')) - INTERVAL 1 MONTH
    {% endif %}
    group by month, platform_id
)
select
    *,
    addMonths(month, -1) p_month,
    views - any(views) over w views_change,
    uploads - any(uploads) over w uploads_change,
    followers - any(followers) over w followers_change
from monthly
window w as (partition by platform_id order by month asc rows between 1 preceding and 1 preceding)

-- Written from /work/shared/reference/current-platform.md (issue #16): the code the write-up
-- shows for this file, as it is written there (an excerpt: the lines it elides stay elided).
-- models/marts/leaderboard/mart_insta_account_weekly.sql (ACTUAL CODE, key CTE)
followers_by_week as (
    select
        week, profile_id,
        max(followers) followers,
        max(following) following,
        -- Window function to get previous week's data
        groupArray(week) OVER (
            PARTITION BY profile_id ORDER BY week ASC
            ROWS BETWEEN 1 PRECEDING AND 0 FOLLOWING
        ) AS week_values,
        week_values[1] p_week,
        abs(p_week - week) <= 7 last_week_available,
        groupArray(followers) OVER (
            PARTITION BY profile_id ORDER BY week ASC
            ROWS BETWEEN 1 PRECEDING AND 0 FOLLOWING
        ) AS followers_values,
        followers_values[1] followers_prev,
        if(last_week_available = 1, followers - followers_prev, NULL) followers_change
    from followers_by_week_all
    group by week, profile_id
)

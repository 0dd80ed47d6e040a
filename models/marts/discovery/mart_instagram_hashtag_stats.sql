with tagged as (
    select
        arrayJoin(arrayMap(x -> lower(x), hashtags)) hashtag,
        profile_id,
        likes,
        comments,
        publish_time
    from {{ ref('stg_beat_instagram_post') }}
    where publish_time >= now() - INTERVAL 30 DAY
)
select
    hashtag,
    countIf(publish_time >= now() - INTERVAL 7 DAY) posts_7d,
    count() posts_30d,
    avg(likes) avg_likes,
    avg(comments) avg_comments,
    topK(10)(profile_id) top_profiles
from tagged
group by hashtag
having posts_30d >= 20

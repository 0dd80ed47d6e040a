select
    collection_id,
    arrayJoin(hashtags) hashtag,
    count() posts,
    sum(likes) likes,
    sum(comments) comments,
    sum(reach) reach
from {{ ref('mart_collection_post') }}
where show_in_report
group by collection_id, hashtag

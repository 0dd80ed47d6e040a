{#- Campaign analytics: one row per post of every post collection, with the latest
    metrics of the post and its creator, an estimated reach for stories, and costs. -#}
with
items as (
    select *
    from {{ ref('stg_coffee_post_collection_item') }}
    where platform = 'INSTAGRAM'
),
items_shortcode as (
    select short_code from items
),
collections as (
    select id, collection_type, created_at
    from {{ ref('stg_coffee_post_collection') }}
),

-- Latest values using argMax
post_data as (
    select shortcode,
           argMax(profile_id, updated_at) profile_id,
           argMax(caption, updated_at) caption,
           argMax(thumbnail_url, updated_at) thumbnail_url,
           argMax(publish_time, updated_at) publish_time,
           argMax(likes, updated_at) likes,
           argMax(comments, updated_at) comments,
           argMax(views, updated_at) views,
           argMax(plays, updated_at) plays,
           argMax(shares, updated_at) shares,
           argMax(saves, updated_at) saves,
           argMax(impressions, updated_at) impressions,
           argMax(reach, updated_at) reach,
           argMax(hashtags, updated_at) hashtags,
           argMax(mentions, updated_at) mentions,
           max(updated_at) last_refreshed_at
    from {{ ref('stg_beat_instagram_post') }}
    where shortcode in items_shortcode
    group by shortcode
),
story_data as (
    select shortcode,
           argMax(profile_follower, updated_at) profile_follower,
           argMax(profile_er, updated_at) profile_er
    from {{ ref('stg_beat_instagram_post') }}
    where shortcode in items_shortcode
    group by shortcode
),
story_metrics as (
    select story_id, argMax(swipe_ups, updated_at) swipe_ups, argMax(sticker_taps, updated_at) sticker_taps
    from {{ ref('stg_beat_instagram_story') }}
    where story_id in items_shortcode
    group by story_id
),
profiles as (
    select profile_id, handle, name, thumbnail, followers
    from {{ ref('stg_beat_instagram_account') }}
),
joined as (
    select
        item.collection_id collection_id,
        c.collection_type collection_type,
        item.platform platform,
        item.short_code post_short_code,
        item.post_type post_type,
        item.post_link post_link,
        substring(pd.caption, 1, 200) post_title,
        pd.thumbnail_url post_thumbnail,
        item.profile_social_id profile_social_id,
        pr.handle profile_handle,
        pr.name profile_name,
        pr.thumbnail profile_pic,
        pd.publish_time published_at,
        pr.followers followers,
        pd.views views,
        pd.plays plays,
        pd.likes likes,
        pd.comments comments,
        pd.shares shares,
        pd.saves saves,
        pd.impressions impressions,
        pd.reach reach,
        -- Story reach estimation formula
        CASE
            WHEN item.created_at < '2023-11-22' THEN
                round((-0.000025017) * sd.profile_follower
                      + (1.11 * (sd.profile_follower * abs(log2(sd.profile_er)) * 2 / 100)))
            ELSE
                round((-0.000025017) * sd.profile_follower
                      + (1.11 * (sd.profile_follower * abs(log2((sd.profile_er + 2))) * 2 / 100)))
        END AS _story_reach,
        -- Int64: the sync declares story_reach int8 (round() alone leaves a Float64)
        if(item.post_type = 'story' and isFinite(_story_reach), toInt64(_story_reach), 0) story_reach,
        sm.swipe_ups swipe_ups,
        sm.sticker_taps sticker_taps,
        ifNull(pd.likes, 0) + ifNull(pd.comments, 0) + ifNull(pd.shares, 0) + ifNull(pd.saves, 0) engagement,
        if(pr.followers > 0, engagement * 100 / pr.followers, 0) engagement_rate,
        item.cost cost,
        if(greatest(toFloat64(pd.impressions), toFloat64(story_reach)) > 0, item.cost * 1000 / greatest(toFloat64(pd.impressions), toFloat64(story_reach)), 0) cpm,
        if(engagement > 0, item.cost / engagement, 0) cpe,
        -- Hashtag normalization using arrayMap
        arrayMap(x -> lower(x), pd.hashtags) hashtags,
        pd.mentions mentions,
        item.is_fake is_fake,
        item.show_in_report show_in_report,
        pd.last_refreshed_at last_refreshed_at,
        item.created_at created_at
    from items item
    left join collections c on c.id = item.collection_id
    left join post_data pd on pd.shortcode = item.short_code
    left join story_data sd on sd.shortcode = item.short_code
    left join story_metrics sm on sm.story_id = item.short_code
    left join profiles pr on pr.profile_id = item.profile_social_id
)
select * from joined

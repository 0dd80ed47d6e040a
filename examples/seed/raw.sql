-- Raw source tables of the shipped stir.kdl (source beat_replica, coffee, _e, vidooly) with
-- deterministic sample rows, so that every model builds and the marts are non-empty.
--
-- Idempotent: drops and recreates the four raw databases only (never the warehouse `dbt`).
-- Times are relative to now() (the models filter on "last 90 days", "last hour", ...), every
-- other value is a function of the row number. The shared universe:
--   Instagram profiles i = 1..400: profile_id = ig_id = toString(1000000 + i), handle creator_<i>
--   YouTube channels   j = 1..120: channel_id = 'UC' || leftPad(toString(j), 22, '0'), handle yt_<j>
--   Instagram posts    shortcode 'Sc<i>x<k>' (k = 0..19), 20 per profile over the last 80 days
--   YouTube videos     video_id 'Vd<j>x<k>' (k = 0..14)
--   Stories            story_id 'St<i>x<k>' (profiles with i % 3 = 0)
--   handles creator_1..creator_60 are linked to channel j = i; accounts 1..50, brands 1..10,
--   campaigns 1..10, post collections 1..30, profile collections 1..10.
-- Statements are separated by ";\n" (one per HTTP request when sent with curl or the tests).

DROP DATABASE IF EXISTS beat_replica;
DROP DATABASE IF EXISTS coffee;
DROP DATABASE IF EXISTS _e;
DROP DATABASE IF EXISTS vidooly;
CREATE DATABASE beat_replica ENGINE = Atomic;
CREATE DATABASE coffee ENGINE = Atomic;
CREATE DATABASE _e ENGINE = Atomic;
CREATE DATABASE vidooly ENGINE = Atomic;

-- ---------------------------------------------------------------------------------------------
-- beat_replica
-- ---------------------------------------------------------------------------------------------

CREATE TABLE beat_replica.instagram_account (id Int64, profile_id String, ig_id String, handle String, name String, bio String, thumbnail String, category String, country String, city String, language String, followers Int64, following Int64, post_count Int64, is_verified Bool, is_business Bool, created_at DateTime, updated_at DateTime) ENGINE = MergeTree ORDER BY id;
INSERT INTO beat_replica.instagram_account
SELECT
    i AS id,
    toString(1000000 + i) AS profile_id,
    toString(1000000 + i) AS ig_id,
    concat('creator_', toString(i)) AS handle,
    concat('Creator ', toString(i)) AS name,
    if(i % 5 = 0 AND i <= 60, concat('collabs: youtube.com/channel/UC', leftPad(toString(i), 22, '0')), concat('bio of creator ', toString(i))) AS bio,
    concat('https://cdn.example.com/ig/', toString(i), '.jpg') AS thumbnail,
    if(i % 7 = 0, '', ['fashion', 'food', 'travel', 'tech'][i % 4 + 1]) AS category,
    if(i % 10 = 0, 'US', 'IN') AS country,
    ['Mumbai, Maharashtra', 'Delhi, Delhi', 'Bengaluru, Karnataka', '', 'Pune, Maharashtra'][i % 5 + 1] AS city,
    ['hi', 'en', 'ta'][i % 3 + 1] AS language,
    2000 + i * i * 20 AS followers,
    300 + i % 200 AS following,
    100 + i AS post_count,
    i % 9 = 0 AS is_verified,
    i % 2 = 0 AS is_business,
    now() - toIntervalDay(400 + i) AS created_at,
    now() - toIntervalHour(i % 11 * 24 + 1) AS updated_at
FROM (SELECT number + 1 AS i FROM numbers(400));

CREATE TABLE beat_replica.instagram_post (id Int64, profile_id String, shortcode String, post_type String, caption String, hashtags Array(String), mentions Array(String), likes Int64, comments Int64, views Int64, plays Int64, impressions Int64, reach Int64, saves Int64, shares Int64, profile_follower Int64, profile_er Float64, thumbnail_url String, publish_time DateTime, created_at DateTime, updated_at DateTime) ENGINE = MergeTree ORDER BY id;
INSERT INTO beat_replica.instagram_post
SELECT
    n AS id,
    toString(1000000 + i) AS profile_id,
    concat('Sc', toString(i), 'x', toString(k)) AS shortcode,
    if(k % 3 = 0, 'REELS', if(k % 3 = 1, 'IMAGE', 'CAROUSEL')) AS post_type,
    concat('Post ', toString(k), ' of creator ', toString(i), ' #', ['Fashion', 'Food', 'Travel', 'Tech'][(i + k) % 4 + 1]) AS caption,
    [['Fashion', 'OOTD', 'style'], ['Food', 'recipe', 'foodie'], ['Travel', 'wanderlust', 'trip'], ['Tech', 'gadgets', 'review']][i % 4 + 1] AS hashtags,
    if(k % 4 = 0, [concat('brand_', toString(i % 10 + 1))], []) AS mentions,
    (2000 + i * i * 20) * (2 + (i * 7 + k * 13) % 9) / 100 AS likes,
    (2000 + i * i * 20) * (1 + (i + k * 3) % 5) / 2000 AS comments,
    if(k % 3 = 0, (2000 + i * i * 20) * (10 + k % 7) / 10, 0) AS views,
    if(k % 3 = 0, (2000 + i * i * 20) * (12 + k % 5) / 10, 0) AS plays,
    (2000 + i * i * 20) * (30 + k % 11) / 100 AS impressions,
    (2000 + i * i * 20) * (20 + k % 7) / 100 AS reach,
    (2000 + i * i * 20) * (1 + k % 3) / 1000 AS saves,
    (2000 + i * i * 20) * (1 + k % 2) / 2000 AS shares,
    2000 + i * i * 20 AS profile_follower,
    1.5 + (i % 7) / 2 AS profile_er,
    concat('https://cdn.example.com/p/', toString(i), '_', toString(k), '.jpg') AS thumbnail_url,
    now() - toIntervalHour(k * 96 + i % 24 + 2) AS publish_time,
    now() - toIntervalHour(k * 96 + i % 24 + 1) AS created_at,
    now() - toIntervalHour(i % 30 + 1) AS updated_at
FROM (SELECT number AS n, intDiv(number, 20) + 1 AS i, number % 20 AS k FROM numbers(8000));

CREATE TABLE beat_replica.youtube_account (channel_id String, handle String, title String, description String, thumbnail String, country String, category String, language String, subscribers Int64, views Int64, uploads Int64, published_at DateTime, created_at DateTime, updated_at DateTime) ENGINE = MergeTree ORDER BY channel_id;
INSERT INTO beat_replica.youtube_account
SELECT
    concat('UC', leftPad(toString(j), 22, '0')) AS channel_id,
    if(j <= 60, concat('creator_', toString(j)), concat('yt_', toString(j))) AS handle,
    concat('Channel ', toString(j)) AS title,
    concat('videos about ', ['fashion', 'food', 'travel', 'tech'][j % 4 + 1]) AS description,
    concat('https://cdn.example.com/yt/', toString(j), '.jpg') AS thumbnail,
    if(j % 8 = 0, 'US', 'IN') AS country,
    if(j % 6 = 0, '', ['fashion', 'food', 'travel', 'tech'][j % 4 + 1]) AS category,
    if(j % 5 = 0, '', ['hi', 'en'][j % 2 + 1]) AS language,
    5000 + j * j * 150 AS subscribers,
    (5000 + j * j * 150) * 40 AS views,
    50 + j AS uploads,
    now() - toIntervalDay(1000 + j) AS published_at,
    now() - toIntervalDay(500 + j) AS created_at,
    now() - toIntervalHour(j % 9 * 24 + 2) AS updated_at
FROM (SELECT number + 1 AS j FROM numbers(120));

CREATE TABLE beat_replica.youtube_post (video_id String, channel_id String, title String, category String, duration_seconds Int64, views Int64, likes Int64, comments Int64, tags Array(String), published_at DateTime, updated_at DateTime) ENGINE = MergeTree ORDER BY video_id;
INSERT INTO beat_replica.youtube_post
SELECT
    concat('Vd', toString(j), 'x', toString(k)) AS video_id,
    concat('UC', leftPad(toString(j), 22, '0')) AS channel_id,
    concat('Video ', toString(k), ' of channel ', toString(j)) AS title,
    ['fashion', 'food', 'travel', 'tech'][j % 4 + 1] AS category,
    if(k % 4 = 0, 45, 300 + k * 37) AS duration_seconds,
    (5000 + j * j * 150) * (5 + (j + k) % 13) / 10 AS views,
    (5000 + j * j * 150) * (5 + (j + k) % 13) / 300 AS likes,
    (5000 + j * j * 150) * (5 + (j + k) % 13) / 5000 AS comments,
    ['vlog', ['fashion', 'food', 'travel', 'tech'][j % 4 + 1]] AS tags,
    now() - toIntervalHour(k * 240 + j % 24 + 3) AS published_at,
    now() - toIntervalHour(j % 20 + 1) AS updated_at
FROM (SELECT intDiv(number, 15) + 1 AS j, number % 15 AS k FROM numbers(1800));

CREATE TABLE beat_replica.scrape_request_log (id Int64, flow String, platform String, params String, status String, retry_count Int32, error String, created_at DateTime, picked_at DateTime, completed_at DateTime) ENGINE = MergeTree ORDER BY id;
-- 2000 requests over the last 5 days; shortcodes Sc<i>x1 of profiles 1..40 failed twice and never succeeded
INSERT INTO beat_replica.scrape_request_log
SELECT
    n AS id,
    if(n % 2 = 0, 'refresh_post_by_shortcode', 'refresh_profile_by_handle') AS flow,
    'INSTAGRAM' AS platform,
    if(n % 2 = 0,
       concat('{"shortcode": "Sc', toString(n % 80 + 1), 'x1"}'),
       concat('{"handle": "creator_', toString(n % 400 + 1), '"}')) AS params,
    multiIf(n % 2 = 0 AND n % 80 < 40, 'FAILED', n % 17 = 0, 'PENDING', n % 13 = 0, 'PICKED', n % 11 = 0, 'FAILED', 'COMPLETE') AS status,
    toInt32(n % 3) AS retry_count,
    if(status = 'FAILED', 'HTTP 429 from instagram', '') AS error,
    now() - toIntervalSecond(n * 216 + 60) AS created_at,
    created_at + toIntervalSecond(5 + n % 40) AS picked_at,
    picked_at + toIntervalSecond(2 + n % 9) AS completed_at
FROM (SELECT number AS n FROM numbers(2000));

CREATE TABLE beat_replica.asset_log (id Int64, entity_type String, entity_id String, source_url String, asset_url String, status String, attempts Int32, created_at DateTime, updated_at DateTime) ENGINE = MergeTree ORDER BY id;
INSERT INTO beat_replica.asset_log
SELECT
    n AS id,
    if(n % 3 = 0, 'profile', 'post') AS entity_type,
    if(n % 3 = 0, toString(1000000 + n % 400 + 1), concat('Sc', toString(n % 400 + 1), 'x', toString(n % 20))) AS entity_id,
    concat('https://scontent.example.com/', toString(n), '.jpg') AS source_url,
    if(n % 4 = 0, '', concat('https://cdn.example.com/a/', toString(n), '.jpg')) AS asset_url,
    multiIf(n % 4 = 0, 'FAILED', n % 10 = 1, 'PENDING', 'SUCCESS') AS status,
    toInt32(1 + n % 4) AS attempts,
    now() - toIntervalSecond(n * 100 + 30) AS created_at,
    created_at + toIntervalSecond(20) AS updated_at
FROM (SELECT number AS n FROM numbers(1200));

CREATE TABLE beat_replica.profile_log (id Int64, platform String, profile_id String, handle String, followers Int64, following Int64, post_count Int64, views Int64, created_at DateTime) ENGINE = MergeTree ORDER BY id;
-- one snapshot every 3 days for 150 days: 400 Instagram profiles (growing) and 120 channels
INSERT INTO beat_replica.profile_log
SELECT
    n AS id,
    'INSTAGRAM' AS platform,
    toString(1000000 + i) AS profile_id,
    concat('creator_', toString(i)) AS handle,
    toInt64((2000 + i * i * 20) * (1 - d * (1 + i % 5) / 2000)) AS followers,
    300 + i % 200 AS following,
    100 + i - intDiv(d, 3) AS post_count,
    0 AS views,
    now() - toIntervalDay(d) - toIntervalMinute(i) AS created_at
FROM (SELECT number AS n, intDiv(number, 50) + 1 AS i, (number % 50) * 3 AS d FROM numbers(20000));
INSERT INTO beat_replica.profile_log
SELECT
    100000 + n AS id,
    'YOUTUBE' AS platform,
    concat('UC', leftPad(toString(j), 22, '0')) AS profile_id,
    if(j <= 60, concat('creator_', toString(j)), concat('yt_', toString(j))) AS handle,
    toInt64((5000 + j * j * 150) * (1 - d * (1 + j % 4) / 1500)) AS followers,
    0 AS following,
    50 + j - intDiv(d, 5) AS post_count,
    toInt64((5000 + j * j * 150) * 40 * (1 - d / 400)) AS views,
    now() - toIntervalDay(d) - toIntervalMinute(j) AS created_at
FROM (SELECT number AS n, intDiv(number, 50) + 1 AS j, (number % 50) * 3 AS d FROM numbers(6000));

CREATE TABLE beat_replica.post_log (id Int64, platform String, profile_id String, shortcode String, likes Int64, comments Int64, views Int64, plays Int64, created_at DateTime) ENGINE = MergeTree ORDER BY id;
-- daily metrics of the first 600 posts (the collection posts) for the last 10 days, today included for half of them
INSERT INTO beat_replica.post_log
SELECT
    n AS id,
    'INSTAGRAM' AS platform,
    toString(1000000 + intDiv(p, 20) + 1) AS profile_id,
    concat('Sc', toString(intDiv(p, 20) + 1), 'x', toString(p % 20)) AS shortcode,
    1000 + p * 3 - d * 20 AS likes,
    50 + p % 40 - d AS comments,
    5000 + p * 10 - d * 100 AS views,
    6000 + p * 10 - d * 100 AS plays,
    if(d = 0 AND p % 2 = 0, now() - toIntervalDay(1), now() - toIntervalDay(d)) - toIntervalMinute(p % 60) AS created_at
FROM (SELECT number AS n, intDiv(number, 10) AS p, number % 10 AS d FROM numbers(6000));

CREATE TABLE beat_replica.instagram_story (story_id String, profile_id String, handle String, media_type String, mentions Array(String), hashtags Array(String), link String, impressions Int64, reach Int64, taps_forward Int64, taps_back Int64, replies Int64, swipe_ups Int64, sticker_taps Int64, published_at DateTime, expires_at DateTime, updated_at DateTime) ENGINE = MergeTree ORDER BY story_id;
INSERT INTO beat_replica.instagram_story
SELECT
    concat('St', toString(i), 'x', toString(k)) AS story_id,
    toString(1000000 + i) AS profile_id,
    concat('creator_', toString(i)) AS handle,
    if(k % 2 = 0, 'IMAGE', 'VIDEO') AS media_type,
    [concat('brand_', toString(i % 10 + 1))] AS mentions,
    ['story'] AS hashtags,
    if(k = 0, 'https://shop.example.com', '') AS link,
    (2000 + i * i * 20) * (10 + k) / 100 AS impressions,
    (2000 + i * i * 20) * (8 + k) / 100 AS reach,
    10 + k * 3 AS taps_forward,
    2 + k AS taps_back,
    k AS replies,
    if(k = 0, 5 + i % 20, 0) AS swipe_ups,
    k % 2 AS sticker_taps,
    now() - toIntervalDay(k * 5 + 1) - toIntervalMinute(i) AS published_at,
    published_at + toIntervalDay(1) AS expires_at,
    published_at + toIntervalHour(2) AS updated_at
FROM (SELECT (intDiv(number, 4) + 1) * 3 AS i, number % 4 AS k FROM numbers(532));

CREATE TABLE beat_replica.instagram_audience (profile_id String, gender Map(String, Float64), age Map(String, Float64), cities Map(String, Float64), countries Map(String, Float64), reachability Float64, authenticity Float64, updated_at DateTime) ENGINE = MergeTree ORDER BY profile_id;
-- two measurements per profile (the latest wins); profiles 391..400 have none
INSERT INTO beat_replica.instagram_audience
SELECT
    toString(1000000 + i) AS profile_id,
    map('male', 0.3 + (i % 5) / 10, 'female', 0.65 - (i % 5) / 10) AS gender,
    map('13-17', 0.05, '18-24', 0.35, '25-34', 0.3, '35-44', 0.15, '45-54', 0.08, '55-64', 0.05, '65+', 0.02) AS age,
    map('Mumbai, Maharashtra', 0.3, 'Delhi', 0.2, 'Pune', 0.1 + v / 100, 'Nagpur', 0.005) AS cities,
    map('IN', 0.82, 'US', 0.08, 'AE', 0.1) AS countries,
    if(i % 6 = 0, 0, 0.3 + (i % 10) / 50) AS reachability,
    0.7 + (i % 20) / 100 AS authenticity,
    now() - toIntervalDay(30 - v * 20 + i % 5) AS updated_at
FROM (SELECT intDiv(number, 2) + 1 AS i, number % 2 AS v FROM numbers(780));

CREATE TABLE beat_replica.youtube_audience (channel_id String, gender Map(String, Float64), age Map(String, Float64), countries Map(String, Float64), updated_at DateTime) ENGINE = MergeTree ORDER BY channel_id;
INSERT INTO beat_replica.youtube_audience
SELECT
    concat('UC', leftPad(toString(j), 22, '0')) AS channel_id,
    map('male', 0.55 + (j % 4) / 20, 'female', 0.4 - (j % 4) / 20) AS gender,
    map('18-24', 0.4, '25-34', 0.35, '35-44', 0.25) AS age,
    map('IN', 0.7 + (j % 3) / 10, 'US', 0.1) AS countries,
    now() - toIntervalDay(j % 30 + 1) AS updated_at
FROM (SELECT number + 1 AS j FROM numbers(120));

CREATE TABLE beat_replica.linked_account (handle String, channel_id String, category String, source String, created_at DateTime) ENGINE = MergeTree ORDER BY handle;
INSERT INTO beat_replica.linked_account
SELECT
    concat('Creator_', toString(i)) AS handle,
    concat('UC', leftPad(toString(i), 22, '0')) AS channel_id,
    ['fashion', 'food', 'travel', 'tech'][i % 4 + 1] AS category,
    'beat' AS source,
    now() - toIntervalDay(100 + i) AS created_at
FROM (SELECT number + 1 AS i FROM numbers(60));

CREATE TABLE beat_replica.instagram_comment (comment_id String, shortcode String, username String, text String, likes Int64, sentiment Float32, created_at DateTime) ENGINE = MergeTree ORDER BY comment_id;
INSERT INTO beat_replica.instagram_comment
SELECT
    concat('Cm', toString(n)) AS comment_id,
    concat('Sc', toString(n % 400 + 1), 'x', toString(n % 20)) AS shortcode,
    concat('fan_', toString(n % 997)) AS username,
    ['love this!', 'where is this from?', 'so good \t "quoted"', 'नमस्ते 🎉'][n % 4 + 1] AS text,
    n % 50 AS likes,
    toFloat32((n % 10) / 10) AS sentiment,
    now() - toIntervalHour(n % 2000 + 1) AS created_at
FROM (SELECT number AS n FROM numbers(3000));

CREATE TABLE beat_replica.instagram_insights (profile_id String, end_time DateTime, impressions Int64, reach Int64, profile_views Int64, website_clicks Int64, updated_at DateTime) ENGINE = MergeTree ORDER BY profile_id;
INSERT INTO beat_replica.instagram_insights
SELECT
    toString(1000000 + i) AS profile_id,
    toStartOfDay(now()) - toIntervalDay(d) AS end_time,
    1000 * i + d * 10 AS impressions,
    700 * i + d * 7 AS reach,
    30 * i + d AS profile_views,
    i + d % 5 AS website_clicks,
    end_time + toIntervalHour(6) AS updated_at
FROM (SELECT intDiv(number, 30) + 1 AS i, number % 30 AS d FROM numbers(3000));

-- ---------------------------------------------------------------------------------------------
-- coffee
-- ---------------------------------------------------------------------------------------------

CREATE TABLE coffee.account (id Int64, name String, email String, plan String, country String, is_active Bool, created_at DateTime, updated_at DateTime) ENGINE = MergeTree ORDER BY id;
INSERT INTO coffee.account
SELECT
    a AS id,
    concat('Agency ', toString(a)) AS name,
    concat('ops', toString(a), '@agency.example.com') AS email,
    ['free', 'pro', 'enterprise'][a % 3 + 1] AS plan,
    ['IN', 'IN', 'AE', 'US'][a % 4 + 1] AS country,
    a % 10 != 0 AS is_active,
    if(a <= 3, now() - toIntervalMinute(a * 10), now() - toIntervalDay(a * 2)) AS created_at,
    created_at + toIntervalMinute(5) AS updated_at
FROM (SELECT number + 1 AS a FROM numbers(50));

CREATE TABLE coffee.brand (id Int64, name String, instagram_handle String, youtube_channel_id String, account_id Int64, created_at DateTime) ENGINE = MergeTree ORDER BY id;
INSERT INTO coffee.brand
SELECT
    b AS id,
    concat('Brand ', toString(b)) AS name,
    if(b = 10, '', concat('Brand_', toString(b))) AS instagram_handle,
    concat('UC', leftPad(toString(100 + b), 22, '0')) AS youtube_channel_id,
    b % 50 + 1 AS account_id,
    now() - toIntervalDay(300) AS created_at
FROM (SELECT number + 1 AS b FROM numbers(10));

CREATE TABLE coffee.campaign (id Int64, name String, brand_id Int64, account_id Int64, status String, budget Float64, start_date Date, end_date Nullable(Date), created_at DateTime, deleted_at Nullable(DateTime)) ENGINE = MergeTree ORDER BY id;
INSERT INTO coffee.campaign
SELECT
    c AS id,
    concat('Campaign ', toString(c)) AS name,
    c AS brand_id,
    c % 50 + 1 AS account_id,
    ['LIVE', 'LIVE', 'DONE', 'DRAFT', 'LIVE'][c % 5 + 1] AS status,
    10000 * c AS budget,
    today() - (c * 7) AS start_date,
    if(c % 2 = 0, NULL, today() + 30) AS end_date,
    now() - toIntervalDay(c * 7 + 3) AS created_at,
    NULL AS deleted_at
FROM (SELECT number + 1 AS c FROM numbers(10));

CREATE TABLE coffee.campaign_profiles (id Int64, campaign_id Int64, platform String, platform_id String, handle String, status String, agreed_cost Float64, deliverables String, created_at DateTime, updated_at DateTime, deleted_at Nullable(DateTime)) ENGINE = MergeTree ORDER BY id;
INSERT INTO coffee.campaign_profiles
SELECT
    n AS id,
    n % 10 + 1 AS campaign_id,
    'instagram' AS platform,
    toString(1000000 + n + 1) AS platform_id,
    concat('Creator_', toString(n + 1)) AS handle,
    ['CONFIRMED', 'DELIVERED', 'INVITED'][n % 3 + 1] AS status,
    5000 + 100 * n AS agreed_cost,
    '1 reel, 2 stories' AS deliverables,
    now() - toIntervalDay(20) AS created_at,
    now() - toIntervalDay(2) AS updated_at,
    if(n % 25 = 24, now() - toIntervalDay(1), NULL) AS deleted_at
FROM (SELECT number AS n FROM numbers(100));

CREATE TABLE coffee.post_collection (id Int64, name String, share_id String, account_id Int64, brand_id Int64, campaign_id Nullable(Int64), collection_type String, budget Float64, start_date Date, end_date Nullable(Date), is_active Bool, created_at DateTime, updated_at DateTime, deleted_at Nullable(DateTime)) ENGINE = MergeTree ORDER BY id;
INSERT INTO coffee.post_collection
SELECT
    c AS id,
    concat('Collection ', toString(c)) AS name,
    concat('share-', lower(hex(cityHash64(c)))) AS share_id,
    c % 50 + 1 AS account_id,
    c % 10 + 1 AS brand_id,
    if(c % 3 = 0, NULL, c % 10 + 1) AS campaign_id,
    if(c % 4 = 0, 'CAMPAIGN', 'POST') AS collection_type,
    20000 * c AS budget,
    today() - 60 AS start_date,
    if(c % 5 = 0, today() - 1, NULL) AS end_date,
    c % 7 != 0 AS is_active,
    now() - toIntervalDay(60) AS created_at,
    now() - toIntervalDay(1) AS updated_at,
    NULL AS deleted_at
FROM (SELECT number + 1 AS c FROM numbers(30));

CREATE TABLE coffee.post_collection_item (id Int64, collection_id Int64, platform String, short_code String, post_type String, post_link String, profile_social_id String, cost Float64, show_in_report Bool, is_fake Bool, created_at DateTime, updated_at DateTime, deleted_at Nullable(DateTime)) ENGINE = MergeTree ORDER BY id;
-- 600 Instagram posts (the first 600 shortcodes, one collection each), 90 stories, 120 YouTube videos
INSERT INTO coffee.post_collection_item
SELECT
    n AS id,
    n % 30 + 1 AS collection_id,
    'instagram' AS platform,
    concat('Sc', toString(intDiv(n, 20) + 1), 'x', toString(n % 20)) AS short_code,
    if(n % 20 % 3 = 0, 'REELS', 'IMAGE') AS post_type,
    concat('https://www.instagram.com/p/Sc', toString(intDiv(n, 20) + 1), 'x', toString(n % 20), '/?utm=a b') AS post_link,
    toString(1000000 + intDiv(n, 20) + 1) AS profile_social_id,
    1000 + n * 5 AS cost,
    n % 17 != 0 AS show_in_report,
    false AS is_fake,
    now() - toIntervalHour(n % 700 + 1) AS created_at,
    now() - toIntervalHour(n % 24) AS updated_at,
    NULL AS deleted_at
FROM (SELECT number AS n FROM numbers(600));
INSERT INTO coffee.post_collection_item
SELECT
    1000 + n AS id,
    n % 30 + 1 AS collection_id,
    'instagram' AS platform,
    concat('St', toString((intDiv(n, 4) + 1) * 3), 'x', toString(n % 4)) AS short_code,
    'STORY' AS post_type,
    '' AS post_link,
    toString(1000000 + (intDiv(n, 4) + 1) * 3) AS profile_social_id,
    500 AS cost,
    true AS show_in_report,
    false AS is_fake,
    now() - toIntervalDay(n % 20 + 1) AS created_at,
    now() - toIntervalDay(1) AS updated_at,
    NULL AS deleted_at
FROM (SELECT number AS n FROM numbers(90));
INSERT INTO coffee.post_collection_item
SELECT
    2000 + n AS id,
    n % 30 + 1 AS collection_id,
    'youtube' AS platform,
    concat('Vd', toString(n % 120 + 1), 'x', toString(intDiv(n, 120))) AS short_code,
    'VIDEO' AS post_type,
    concat('https://youtu.be/Vd', toString(n % 120 + 1)) AS post_link,
    concat('UC', leftPad(toString(n % 120 + 1), 22, '0')) AS profile_social_id,
    3000 AS cost,
    n % 9 != 0 AS show_in_report,
    false AS is_fake,
    now() - toIntervalDay(n % 40 + 1) AS created_at,
    now() - toIntervalDay(1) AS updated_at,
    NULL AS deleted_at
FROM (SELECT number AS n FROM numbers(120));

CREATE TABLE coffee.profile_collection (id Int64, name String, share_id String, account_id Int64, collection_type String, is_active Bool, created_at DateTime, updated_at DateTime, deleted_at Nullable(DateTime)) ENGINE = MergeTree ORDER BY id;
INSERT INTO coffee.profile_collection
SELECT c, concat('Shortlist ', toString(c)), concat('pshare-', toString(c)), c % 50 + 1, 'PROFILE', true,
       now() - toIntervalDay(30), now() - toIntervalDay(1), NULL
FROM (SELECT number + 1 AS c FROM numbers(10));

CREATE TABLE coffee.profile_collection_item (id Int64, collection_id Int64, platform String, platform_id String, handle String, notes String, created_at DateTime, deleted_at Nullable(DateTime)) ENGINE = MergeTree ORDER BY id;
-- 160 known Instagram profiles, 30 YouTube channels, 10 brand-new handles added in the last hour
INSERT INTO coffee.profile_collection_item
SELECT
    n AS id,
    n % 10 + 1 AS collection_id,
    multiIf(n < 160, 'instagram', n < 190, 'youtube', 'instagram') AS platform,
    multiIf(n < 160, toString(1000000 + n * 2 + 1), n < 190, concat('UC', leftPad(toString(n - 159), 22, '0')), '') AS platform_id,
    multiIf(n < 160, concat('Creator_', toString(n * 2 + 1)), n < 190, concat('yt_', toString(n - 159)), concat('newbie_', toString(n))) AS handle,
    '' AS notes,
    if(n >= 190, now() - toIntervalMinute(n - 185), now() - toIntervalDay(n % 30 + 1)) AS created_at,
    NULL AS deleted_at
FROM (SELECT number AS n FROM numbers(200));

CREATE TABLE coffee.activity_tracker (id Int64, account_id Int64, user_id Int64, event String, feature String, properties String, created_at DateTime) ENGINE = MergeTree ORDER BY id;
INSERT INTO coffee.activity_tracker
SELECT
    n AS id,
    n % 50 + 1 AS account_id,
    (n % 50 + 1) * 10 + n % 3 AS user_id,
    ['search', 'profile_view', 'export', 'login'][n % 4 + 1] AS event,
    ['discovery', 'leaderboard', 'collections', 'reports'][n % 4 + 1] AS feature,
    '{}' AS properties,
    now() - toIntervalMinute(n * 4 + 1) AS created_at
FROM (SELECT number AS n FROM numbers(6000));

CREATE TABLE coffee.account_tracker (id Int64, account_id Int64, platform String, platform_id String, handle String, created_at DateTime, deleted_at Nullable(DateTime)) ENGINE = MergeTree ORDER BY id;
INSERT INTO coffee.account_tracker
SELECT
    n AS id,
    n % 50 + 1 AS account_id,
    if(n < 160, 'instagram', 'youtube') AS platform,
    if(n < 160, toString(1000000 + n + 1), concat('UC', leftPad(toString(n - 159), 22, '0'))) AS platform_id,
    if(n < 160, concat('Creator_', toString(n + 1)), concat('yt_', toString(n - 159))) AS handle,
    now() - toIntervalDay(40) AS created_at,
    if(n % 31 = 30, now() - toIntervalDay(3), NULL) AS deleted_at
FROM (SELECT number AS n FROM numbers(200));

CREATE TABLE coffee.partner (id Int64, name String, commission_rate Float64, is_active Bool, created_at DateTime) ENGINE = MergeTree ORDER BY id;
INSERT INTO coffee.partner
SELECT p, concat('Partner ', toString(p)), 0.05 * p, true, now() - toIntervalDay(400) FROM (SELECT number + 1 AS p FROM numbers(5));

CREATE TABLE coffee.orders (id Int64, account_id Int64, partner_id Int64, status String, currency String, gross_amount Float64, discount_amount Float64, created_at DateTime, paid_at Nullable(DateTime)) ENGINE = MergeTree ORDER BY id;
INSERT INTO coffee.orders
SELECT
    o AS id,
    o % 50 + 1 AS account_id,
    o % 5 + 1 AS partner_id,
    ['PAID', 'PAID', 'PAID', 'PENDING', 'CANCELLED'][o % 5 + 1] AS status,
    'INR' AS currency,
    round(999 + (o % 37) * 250.5, 2) AS gross_amount,
    round(if(o % 4 = 0, 100, 0), 2) AS discount_amount,
    now() - toIntervalHour(o * 3 + 1) AS created_at,
    if(status = 'PAID', created_at + toIntervalMinute(10), NULL) AS paid_at
FROM (SELECT number + 1 AS o FROM numbers(1000));

CREATE TABLE coffee.order_items (id Int64, order_id Int64, product String, quantity Int32, unit_price Float64, created_at DateTime) ENGINE = MergeTree ORDER BY id;
INSERT INTO coffee.order_items
SELECT
    n + 1 AS id,
    intDiv(n, 2) + 1 AS order_id,
    ['credits_100', 'report_export', 'seat'][n % 3 + 1] AS product,
    toInt32(1 + n % 3) AS quantity,
    round(199.5 + (n % 7) * 100, 2) AS unit_price,
    now() - toIntervalHour(intDiv(n, 2) * 3 + 1) AS created_at
FROM (SELECT number AS n FROM numbers(2000));

CREATE TABLE coffee.category (id Int64, name String, parent_id Nullable(Int64), platform String, display_order Int32, keywords Array(String), is_active Bool) ENGINE = MergeTree ORDER BY id;
INSERT INTO coffee.category VALUES
    (1, 'fashion', NULL, 'INSTAGRAM', 1, ['fashion', 'ootd', 'style'], true),
    (2, 'food', NULL, 'INSTAGRAM', 2, ['food', 'recipe', 'foodie'], true),
    (3, 'travel', NULL, 'INSTAGRAM', 3, ['travel', 'wanderlust', 'trip'], true),
    (4, 'tech', NULL, 'INSTAGRAM', 4, ['tech', 'gadgets', 'review'], true),
    (5, 'streetwear', 1, 'INSTAGRAM', 5, ['streetwear'], true),
    (6, 'gaming', NULL, 'YOUTUBE', 6, ['gaming'], true),
    (7, 'retired', NULL, 'INSTAGRAM', 7, ['old'], false);

CREATE TABLE coffee.user_search (id Int64, account_id Int64, user_id Int64, platform String, query String, filters String, results Int32, created_at DateTime) ENGINE = MergeTree ORDER BY id;
INSERT INTO coffee.user_search
SELECT
    n AS id,
    n % 50 + 1 AS account_id,
    (n % 50 + 1) * 10 AS user_id,
    if(n % 3 = 0, 'YOUTUBE', 'INSTAGRAM') AS platform,
    ['fashion mumbai', 'food bloggers', 'tech reviewers', 'travel'][n % 4 + 1] AS query,
    '{"followers": "10k-50k"}' AS filters,
    toInt32(n % 200) AS results,
    now() - toIntervalHour(n % 2000 + 1) AS created_at
FROM (SELECT number AS n FROM numbers(1500));

-- ---------------------------------------------------------------------------------------------
-- _e: what beat received recently (the request jobs skip targets attempted recently)
-- ---------------------------------------------------------------------------------------------

CREATE TABLE _e.scrape_request_log_events (flow String, params String, event_timestamp DateTime) ENGINE = MergeTree ORDER BY event_timestamp;
INSERT INTO _e.scrape_request_log_events
SELECT
    ['refresh_post_by_shortcode', 'refresh_profile_by_handle', 'refresh_yt_channel_by_id', 'refresh_yt_video_by_id', 'refresh_stories_by_handle'][n % 5 + 1] AS flow,
    multiIf(n % 5 = 0, concat('{"shortcode": "Sc', toString(n % 400 + 1), 'x0"}'),
            n % 5 = 1, concat('{"handle": "creator_', toString(n % 80 + 1), '"}'),
            n % 5 = 2, concat('{"channel_id": "UC', leftPad(toString(n % 40 + 1), 22, '0'), '"}'),
            n % 5 = 3, concat('{"video_id": "Vd', toString(n % 40 + 1), 'x0"}'),
            concat('{"handle": "creator_', toString(n % 30 + 1), '"}')) AS params,
    now() - toIntervalMinute(n * 3 + 1) AS event_timestamp
FROM (SELECT number AS n FROM numbers(500));

-- ---------------------------------------------------------------------------------------------
-- vidooly
-- ---------------------------------------------------------------------------------------------

CREATE TABLE vidooly.youtube_channel_category (id Int64, name String) ENGINE = MergeTree ORDER BY id;
INSERT INTO vidooly.youtube_channel_category VALUES (1, 'fashion'), (2, 'food'), (3, 'travel'), (4, 'tech'), (5, 'music');

CREATE TABLE vidooly.youtube_channel (channel_id String, category_id Int64, language String, subscribers Int64, monthly_views Int64, country String, delivered_at DateTime) ENGINE = MergeTree ORDER BY channel_id;
INSERT INTO vidooly.youtube_channel
SELECT
    concat('UC', leftPad(toString(j), 22, '0')) AS channel_id,
    j % 5 + 1 AS category_id,
    ['hi', 'en', 'te'][j % 3 + 1] AS language,
    (5000 + j * j * 150) - v * 100 AS subscribers,
    (5000 + j * j * 150) * 3 AS monthly_views,
    if(j % 8 = 0, 'us', 'in') AS country,
    now() - toIntervalDay(30 * (2 - v)) AS delivered_at
FROM (SELECT intDiv(number, 2) + 1 AS j, number % 2 AS v FROM numbers(240));

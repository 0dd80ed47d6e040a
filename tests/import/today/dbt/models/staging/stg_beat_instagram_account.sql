-- Written from /work/shared/reference/current-platform.md (issue #16): the code the write-up
-- shows for this file, as it is written there (an excerpt: the lines it elides stay elided).
-- models/staging/stg_beat_instagram_account.sql (ACTUAL CODE)
{{ config(materialized = 'table', tags=["post_ranker_partial"], order_by='id') }}
with
data as (
     select * from beat_replica.instagram_account
)
select * from data

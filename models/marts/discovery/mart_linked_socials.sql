{#- Instagram handle <-> YouTube channel pairs, from beat's linking and from bios. -#}
with from_beat as (
    select handle, channel_id, category, created_at linked_at
    from {{ ref('stg_beat_linked_account') }}
),
from_bio as (
    select
        lower(ia.handle) handle,
        extract(ia.bio, 'youtube\\.com/channel/(UC[a-zA-Z0-9_-]{22})') channel_id,
        ia.category category,
        ia.updated_at linked_at
    from {{ ref('stg_beat_instagram_account') }} ia
    where channel_id != ''
)
select
    handle,
    channel_id,
    argMax(u.category, u.linked_at) category,
    max(u.linked_at) linked_at
from (
    select * from from_beat
    union all
    select * from from_bio
) u
group by handle, channel_id

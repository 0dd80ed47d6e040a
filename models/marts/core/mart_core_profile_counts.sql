select 'INSTAGRAM' platform, count() profiles, countIf(followers >= 1000) discoverable, max(updated_at) last_update
from {{ ref('stg_beat_instagram_account') }}
union all
select 'YOUTUBE' platform, count() profiles, countIf(subscribers >= 1000) discoverable, max(updated_at) last_update
from {{ ref('stg_beat_youtube_account') }}

select event_id, kind, ts, toDate(ts) as day, user_id
from {{ source('tracking', 'events') }}
where kind in ({{ var('event_types') }})

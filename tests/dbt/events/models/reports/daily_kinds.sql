select day, kind, count() as events, uniqExact(user_id) as users
from {{ ref('base_events') }}
{{ incremental_window('day') }}
group by day, kind

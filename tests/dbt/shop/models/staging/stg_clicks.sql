select user_id as customer_id, url, ts, '{{ this.identifier }}' as built_as, '{{ this.schema }}' as built_in
from {{ source('events', 'clicks') }} -- {{ source('events', 'clicks').identifier }}

select id as customer_id, name, tags, profile_json as profile
from {{ source('raw', 'customers') }}

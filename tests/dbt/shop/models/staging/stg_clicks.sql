select user_id as customer_id, url, ts from {{ source('events', 'clicks') }}

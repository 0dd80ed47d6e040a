select * from {{ ref('base_events') }}

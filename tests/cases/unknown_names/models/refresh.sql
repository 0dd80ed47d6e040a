select id from {{ ref('mart_account') }}

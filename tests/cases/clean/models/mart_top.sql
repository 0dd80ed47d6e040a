select id, followers from {{ ref('mart_account') }} order by followers desc limit 100

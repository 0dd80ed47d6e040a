{#- Every profile in any collection, once a night. -#}
select distinct platform, handle
from {{ ref('stg_coffee_profile_collection_item') }}
where handle != ''
limit 5000

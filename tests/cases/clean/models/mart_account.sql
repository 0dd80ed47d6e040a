select id, handle, followers, today() as date
from {{ ref('stg_account') }}
where followers >= {{ var('min_followers') }}
{% if is_incremental() %}and id not in (select id from {{ this }}){% endif %}

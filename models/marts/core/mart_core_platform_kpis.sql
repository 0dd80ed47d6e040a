{#- The numbers on the operations dashboard, recomputed every 15 minutes. -#}
select 'active_accounts' metric, toFloat64(countIf(is_active)) value
from {{ ref('stg_coffee_account') }}
union all
select 'paid_accounts' metric, toFloat64(countIf(is_active and plan != 'free')) value
from {{ ref('stg_coffee_account') }}
union all
select 'active_collections' metric, toFloat64(count()) value
from {{ ref('mart_core_active_collections') }}
union all
select 'signups_today' metric, toFloat64(sumIf(signups, date = today())) value
from {{ ref('mart_core_signups') }}
union all
select 'discoverable_profiles' metric, toFloat64(sum(discoverable)) value
from {{ ref('mart_core_profile_counts') }}
union all
select 'scrape_failure_rate_1h' metric, toFloat64(avg(failure_rate_1h)) value
from {{ ref('mart_core_scrape_health') }}

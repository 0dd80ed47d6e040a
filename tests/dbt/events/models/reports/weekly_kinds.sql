select toMonday(day) as week, kind, sum(events) as events {{ config(incremental_strategy='append', tags=['weekly'], order_by='(week, kind)', partition_by='toYYYYMM(week)') }}
from {{ ref('daily_kinds') }}
{% if is_incremental() -%}
where week >= (select max(week) from {{ this }})
{%- endif %}
group by week, kind

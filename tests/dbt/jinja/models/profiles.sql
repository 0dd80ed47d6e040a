{%- set platforms = ['Instagram', 'YouTube'] -%}
{# A comment dbt and stir both drop #}
select
    id,
    {{ follower_group('followers') }} as follower_group,
    {{ pivot('platform', platforms, measure='followers', prefix='followers') }},
    {{ audit_columns() }}
from {{ source('raw', 'profiles') }}
where platform in ({{ var('platforms') }})
  and followers >= {{ var('min_followers') }}
  {%- if var('label', none) is not none %}
  and '{{ var("label") | upper }}' != ''
  {%- endif %}
group by id, followers

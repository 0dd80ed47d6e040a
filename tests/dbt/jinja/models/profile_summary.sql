{% set metrics %}
count() as profiles, avg(followers_instagram) as avg_instagram
{% endset %}
{% call wrap_select('s') %}
select {{ metrics | trim }}, {{ [1, 2, 3] | join(' + ') }} as six
from {{ ref('profiles') }}
{% endcall %}

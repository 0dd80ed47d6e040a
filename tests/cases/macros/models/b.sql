select {{ cents_to_dollars('amount', scale=4) }} as dollars, {{ var('limit', 250) }} as lim
from {{ ref('a') }}
{{ since(var('days', 3)) }}

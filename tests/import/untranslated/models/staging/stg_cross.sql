select 1 as x
from {{ ref('other_project', 'their_model') }}

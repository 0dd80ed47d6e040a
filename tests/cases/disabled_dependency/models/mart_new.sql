select x
from {{ ref('mart_old') }}

select handle
from {{ ref("b") }}
where followers > {{ var("min_folowers") }}

select {{ cents_to_dolars('amount') }} as dollars
from {{ source('beat', 'account') }}

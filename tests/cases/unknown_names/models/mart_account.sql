select * from {{ ref('stg_acount') }}

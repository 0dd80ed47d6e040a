select id, handle from {{ source('beat_replica', 'instagram_acount') }}
union all select id, handle from {{ source('beat', 'instagram_account') }}

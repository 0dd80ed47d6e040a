select id, handle, followers from {{ source('beat_replica', 'instagram_account') }}

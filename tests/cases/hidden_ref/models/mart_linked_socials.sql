select 'h' as handle, 1 as channel_id

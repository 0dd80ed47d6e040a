{#- Thumbnails and media whose upload failed at most three times in the last day. -#}
select entity_type, entity_id, argMax(source_url, updated_at) source_url
from {{ ref('stg_beat_asset_log') }}
where created_at >= now() - INTERVAL 1 DAY
group by entity_type, entity_id
having argMax(status, updated_at) = 'FAILED' and max(attempts) < 3
order by max(updated_at) asc
limit 300

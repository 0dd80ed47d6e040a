-- dbt.mart_linked_socials in a comment is not a reference
with links as (
    select handle, max(channel_id) channel_id
    from dbt.mart_linked_socials
    group by handle
)
select links.handle, 'dbt.mart_primary_group_metrics' as note, 1 mart_linked_socials
from links
left join mart_primary_group_metrics gm on gm.group_key = links.handle

select 'g' as group_key

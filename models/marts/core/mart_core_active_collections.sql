select
    pc.id collection_id,
    pc.account_id account_id,
    pc.collection_type collection_type,
    pc.start_date start_date,
    pc.end_date end_date
from {{ ref('stg_coffee_post_collection') }} pc
inner join {{ ref('stg_coffee_account') }} a on a.id = pc.account_id
where pc.is_active and a.is_active
  and (pc.end_date is null or pc.end_date >= today())

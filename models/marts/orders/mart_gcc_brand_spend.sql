select
    b.id brand_id,
    toStartOfMonth(c.start_date) month,
    b.name brand_name,
    toInt32(uniqExact(c.id)) campaigns,
    toDecimal64(sum(c.budget), 2) spend
from {{ ref('stg_coffee_brand') }} b
inner join {{ ref('stg_coffee_campaign') }} c on c.brand_id = b.id
where c.status != 'DRAFT'
group by brand_id, month, brand_name

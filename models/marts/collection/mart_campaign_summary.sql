select
    c.id campaign_id,
    c.name name,
    c.brand_id brand_id,
    c.status status,
    c.budget budget,
    c.start_date start_date,
    c.end_date end_date,
    count(p.platform_id) creators,
    countIf(p.posts_delivered > 0) creators_delivered,
    sum(p.agreed_cost) committed_cost,
    sum(p.views) views,
    sum(p.engagement) engagement,
    if(sum(p.engagement) > 0, sum(p.agreed_cost) / sum(p.engagement), 0) cpe
from {{ ref('stg_coffee_campaign') }} c
left join {{ ref('mart_campaign_profile_posts') }} p on p.campaign_id = c.id
group by campaign_id, name, brand_id, status, budget, start_date, end_date

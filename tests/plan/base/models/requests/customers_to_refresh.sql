-- customers whose profile is older than a day
select customer_id from {{ ref('stg_customers') }} where profile = ''

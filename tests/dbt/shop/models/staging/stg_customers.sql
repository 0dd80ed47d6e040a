{{ config(materialized='table', order_by='customer_id') }}
select id as customer_id, lower(email) as email, country
from {{ source('raw', 'customers') }}
{% if var('only_active', false) %}where active{% endif %}

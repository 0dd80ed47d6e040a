{{ config(materialized='incremental', unique_key='id', pre_hook="optimize table {{ this }}", alias='users') }}
select {{ dbt_utils.star(from=source('app', 'users'), except=['password']) }}
from {{ source('app', 'users') }}
where country in ('{{ env_var("COUNTRY", "IN") }}')
{% if target.name == 'prod' %}and not test_account{% endif %}

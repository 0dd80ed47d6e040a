{{ config(materialized='table') }}
select order_id, amount, currency from {{ ref('stg_orders') }} where amount > {{ var('big_order', 1000) }}

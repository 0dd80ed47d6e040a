select distinct kind {{- config(order_by='kind') }} from {{ ref('base_events') }}

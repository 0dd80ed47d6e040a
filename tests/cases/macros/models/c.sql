select {{ broken(1) }} from {{ ref('b') }}

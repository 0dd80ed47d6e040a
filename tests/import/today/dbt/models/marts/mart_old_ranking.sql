{{ config(tags=['deprecated']) }}
select 1 as x

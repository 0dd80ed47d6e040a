{{ config(tags=['collections'], order_by='tuple()') }}
select now() as ts

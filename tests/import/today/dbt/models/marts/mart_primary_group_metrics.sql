{{ config(tags=['hourly'], order_by='group_key') }}
-- A stand-in (the write-up names this model but does not show it): read by name by mart_instagram_account.
select '' as group_key

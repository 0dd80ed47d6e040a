{{ config(order_by='handle') }}
-- A stand-in (the write-up names this model but does not show it): read by name by mart_instagram_account.
select '' as handle, '' as channel_id, '' as category

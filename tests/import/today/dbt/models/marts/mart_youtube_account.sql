{{ config(tags=['hourly'], order_by='channelid') }}
-- A stand-in (the write-up names this model but does not show it): read by name by mart_time_series.
select '' as channelid, '' as country

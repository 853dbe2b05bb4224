-- Reconciliation of app_events_hourly: the source count that the daily sum of `events` must equal.
-- Takes %(start)s and %(end)s, a window of whole UTC days.
SELECT count(*) FROM events WHERE timestamp >= %(start)s AND timestamp < %(end)s

-- Reconciliation of fleet_alerts_daily: the source count that the daily sum of `alerts` must equal.
-- Takes %(start)s and %(end)s, a window of whole UTC days.
SELECT count(*) FROM fleet_alert WHERE created_at >= %(start)s AND created_at < %(end)s

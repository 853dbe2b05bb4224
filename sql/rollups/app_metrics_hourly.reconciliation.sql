-- Reconciliation of app_metrics_hourly: the source count that the daily sum of `data_points` must equal.
-- Takes %(start)s and %(end)s, a window of whole UTC days.
SELECT count(*) FROM metrics WHERE timestamp >= %(start)s AND timestamp < %(end)s

-- Reconciliation of container_metrics_hourly: the source count that the daily sum of `samples` must equal.
-- Takes %(start)s and %(end)s, a window of whole UTC days.
SELECT count(*) FROM container_metrics WHERE timestamp >= %(start)s AND timestamp < %(end)s

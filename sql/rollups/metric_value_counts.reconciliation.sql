-- Reconciliation of metric_value_counts: the source count that the daily sum of `samples` must equal.
-- Takes %(start)s and %(end)s, a window of whole UTC days.
SELECT count(*) FROM metrics WHERE timestamp >= %(start)s AND timestamp < %(end)s

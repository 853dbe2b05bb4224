-- Reconciliation of deployment_durations: the source count that the daily sum of `deployments` must equal.
-- Takes %(start)s and %(end)s, a window of whole UTC days.
SELECT count(*) FROM deployments WHERE created_at >= %(start)s AND created_at < %(end)s

-- Reconciliation of tenant_usage: the source count that the daily sum of `launches` must equal.
-- Takes %(start)s and %(end)s, a window of whole UTC days.
SELECT count(*) FROM main_job WHERE organization_id IS NOT NULL AND created >= %(start)s AND created < %(end)s

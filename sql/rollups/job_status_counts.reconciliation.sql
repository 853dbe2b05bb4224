-- Reconciliation of job_status_counts: the source count that the daily sum of `jobs` must equal.
-- Takes %(start)s and %(end)s, a window of whole UTC days.
SELECT count(*) FROM main_job WHERE created >= %(start)s AND created < %(end)s

-- Reconciliation of job_duration_by_template: the source count that the daily sum of `runs` must equal.
-- Takes %(start)s and %(end)s, a window of whole UTC days.
SELECT count(*) FROM main_job WHERE created >= %(start)s AND created < %(end)s

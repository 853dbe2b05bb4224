-- Reconciliation of failing_hosts: the source count that the daily sum of `failed_runs` must equal.
-- Takes %(start)s and %(end)s, a window of whole UTC days.
SELECT count(*) FROM main_jobhostsummary s JOIN main_job j ON j.id = s.job_id WHERE s.failures > 0 AND s.host_id IS NOT NULL AND j.created >= %(start)s AND j.created < %(end)s

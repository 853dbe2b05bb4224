-- Reconciliation of template_host_outcomes: the source count that the daily sum of `runs` must equal.
-- Takes %(start)s and %(end)s, a window of whole UTC days.
SELECT count(*) FROM main_jobhostsummary s JOIN main_job j ON j.id = s.job_id WHERE j.created >= %(start)s AND j.created < %(end)s

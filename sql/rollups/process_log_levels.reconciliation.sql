-- Reconciliation of process_log_levels: the source count that the daily sum of `lines` must equal.
-- Takes %(start)s and %(end)s, a window of whole UTC days.
SELECT count(*) FROM "Logs" WHERE log_time >= (%(start)s AT TIME ZONE 'UTC') AND log_time < (%(end)s AT TIME ZONE 'UTC')

-- Reconciliation of queue_throughput: the source count that the daily sum of `elements` must equal.
-- Takes %(start)s and %(end)s, a window of whole UTC days.
SELECT count(*) FROM "Queues" WHERE created_date >= (%(start)s AT TIME ZONE 'UTC') AND created_date < (%(end)s AT TIME ZONE 'UTC')

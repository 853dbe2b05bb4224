-- OpenOrchestrator queue elements per UTC day (of creation) and queue: outcome counts, processing time
-- (end - start) of finished elements and waiting time (start - created) of started ones. Its timestamps
-- are naive UTC wall times, hence the AT TIME ZONE on the window.
SELECT q.created_date::date                                                      AS day,
       q.queue_name,
       count(*)                                                                  AS elements,
       count(*) FILTER (WHERE q.status = 'DONE')                                 AS done,
       count(*) FILTER (WHERE q.status = 'FAILED')                               AS failed,
       count(*) FILTER (WHERE q.status IN ('NEW', 'IN_PROGRESS'))                AS pending,
       count(*) FILTER (WHERE q.status = 'ABANDONED')                            AS abandoned,
       avg(extract(epoch FROM q.end_date - q.start_date))::float8                AS avg_processing_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM q.end_date - q.start_date)) AS p95_processing_s,
       avg(extract(epoch FROM q.start_date - q.created_date))::float8            AS avg_wait_s,
       count(q.end_date - q.start_date)                                          AS processed_elements,
       coalesce(sum(extract(epoch FROM q.end_date - q.start_date)), 0)::float8   AS sum_processing_s,
       count(q.start_date)                                                       AS started_elements,
       coalesce(sum(extract(epoch FROM q.start_date - q.created_date)), 0)::float8 AS sum_wait_s
FROM "Queues" q
WHERE q.created_date >= (%(start)s AT TIME ZONE 'UTC') AND q.created_date < (%(end)s AT TIME ZONE 'UTC')
GROUP BY 1, 2
ORDER BY 1, 2

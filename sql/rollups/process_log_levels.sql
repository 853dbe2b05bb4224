-- OpenOrchestrator log lines per UTC day, process and level (naive UTC timestamps).
SELECT l.log_time::date                                                          AS day,
       l.process_name,
       count(*)                                                                  AS lines,
       count(*) FILTER (WHERE l.log_level = 'TRACE')                             AS trace,
       count(*) FILTER (WHERE l.log_level = 'INFO')                              AS info,
       count(*) FILTER (WHERE l.log_level = 'ERROR')                             AS error
FROM "Logs" l
WHERE l.log_time >= (%(start)s AT TIME ZONE 'UTC') AND l.log_time < (%(end)s AT TIME ZONE 'UTC')
GROUP BY 1, 2
ORDER BY 1, 2

-- Job host summaries per UTC day (of the job's creation), job template and host: runs by outcome and the
-- sums of the task counters, so that per-template pass/fail/unreachable reports survive the purge.
SELECT (j.created AT TIME ZONE 'UTC')::date                                      AS day,
       j.job_template_id,
       jt.name                                                                   AS job_template_name,
       s.host_id,
       s.host_name,
       count(*)                                                                  AS runs,
       count(*) FILTER (WHERE s.failures = 0 AND s.dark = 0)                     AS runs_ok,
       count(*) FILTER (WHERE s.failures > 0)                                    AS runs_failed,
       count(*) FILTER (WHERE s.dark > 0)                                        AS runs_unreachable,
       sum(s.ok)                                                                 AS ok,
       sum(s.changed)                                                            AS changed,
       sum(s.failures)                                                           AS failures,
       sum(s.dark)                                                               AS unreachable,
       sum(s.skipped)                                                            AS skipped,
       sum(s.ignored)                                                            AS ignored,
       sum(s.rescued)                                                            AS rescued,
       sum(s.processed)                                                          AS processed
FROM main_jobhostsummary s
JOIN main_job j ON j.id = s.job_id
LEFT JOIN main_jobtemplate jt ON jt.id = j.job_template_id
WHERE j.created >= %(start)s AND j.created < %(end)s
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 4, 5

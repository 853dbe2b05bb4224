-- Jobs per UTC day (of creation), organization and job template: runs by status and elapsed-time
-- statistics over finished jobs (running, pending and waiting jobs are counted, not timed). The exact sums
-- of elapsed seconds per finished status make the seed's average of successful jobs additive over days.
SELECT (j.created AT TIME ZONE 'UTC')::date                                          AS day,
       j.organization_id,
       o.name                                                                        AS organization_name,
       j.job_template_id,
       jt.name                                                                       AS job_template_name,
       count(*)                                                                      AS runs,
       count(*) FILTER (WHERE j.status = 'successful')                               AS runs_successful,
       count(*) FILTER (WHERE j.status = 'failed')                                   AS runs_failed,
       count(*) FILTER (WHERE j.status = 'error')                                    AS runs_error,
       count(*) FILTER (WHERE j.status = 'canceled')                                 AS runs_canceled,
       count(*) FILTER (WHERE j.status IN ('new', 'pending', 'waiting', 'running'))  AS runs_unfinished,
       count(*) FILTER (WHERE j.status NOT IN ('successful', 'failed', 'error', 'canceled',
                                               'new', 'pending', 'waiting', 'running')) AS runs_other_status,
       count(j.finished)                                                             AS finished_runs,
       avg(j.elapsed) FILTER (WHERE j.finished IS NOT NULL)::float8                  AS avg_elapsed_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY j.elapsed)
           FILTER (WHERE j.finished IS NOT NULL)                                     AS p50_elapsed_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY j.elapsed)
           FILTER (WHERE j.finished IS NOT NULL)                                     AS p95_elapsed_s,
       max(j.elapsed) FILTER (WHERE j.finished IS NOT NULL)::float8                  AS max_elapsed_s,
       coalesce(sum(j.elapsed) FILTER (WHERE j.finished IS NOT NULL), 0)::float8     AS total_job_seconds,
       coalesce(sum(j.elapsed) FILTER (WHERE j.status = 'successful'), 0)::numeric(18, 3) AS elapsed_successful_s,
       coalesce(sum(j.elapsed) FILTER (WHERE j.status = 'failed'), 0)::numeric(18, 3)     AS elapsed_failed_s,
       coalesce(sum(j.elapsed) FILTER (WHERE j.status = 'error'), 0)::numeric(18, 3)      AS elapsed_error_s,
       coalesce(sum(j.elapsed) FILTER (WHERE j.status = 'canceled'), 0)::numeric(18, 3)   AS elapsed_canceled_s
FROM main_job j
LEFT JOIN main_jobtemplate jt ON jt.id = j.job_template_id
LEFT JOIN main_organization o ON o.id = j.organization_id
WHERE j.created >= %(start)s AND j.created < %(end)s
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 4

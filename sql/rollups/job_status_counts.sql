-- Jobs per UTC day (of creation), status and launch type.
SELECT (created AT TIME ZONE 'UTC')::date AS day,
       status,
       launch_type,
       count(*)                           AS jobs,
       count(finished)                    AS finished_jobs
FROM main_job
WHERE created >= %(start)s AND created < %(end)s
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3

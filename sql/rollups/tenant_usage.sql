-- Per UTC day and organization: launches (jobs created), job-seconds of the jobs finished among them,
-- distinct hosts they ran on, the peak number of jobs running at once during the day, quota decisions
-- by kind, and utilization against the tenant_max_* limits (NULL where no limit is set). Every
-- organization that existed on the day has a row, with zeros on days without activity.
WITH days AS (
    SELECT d::date AS day, d AS day_start, d + interval '1 day' AS day_end
    FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 day', interval '1 day') AS d
),
launches AS (
    SELECT (j.created AT TIME ZONE 'UTC')::date AS day, j.organization_id,
           count(*) AS launches,
           coalesce(sum(j.elapsed) FILTER (WHERE j.finished IS NOT NULL), 0)::float8 AS job_seconds
    FROM main_job j
    WHERE j.created >= %(start)s AND j.created < %(end)s
    GROUP BY 1, 2
),
hosts AS (
    SELECT (j.created AT TIME ZONE 'UTC')::date AS day, j.organization_id, count(DISTINCT s.host_id) AS distinct_hosts
    FROM main_job j
    JOIN main_jobhostsummary s ON s.job_id = j.id
    WHERE j.created >= %(start)s AND j.created < %(end)s
    GROUP BY 1, 2
),
edges AS (  -- +1 when a job starts running within a day, -1 when it stops (or the day ends)
    SELECT d.day, j.organization_id, greatest(j.started, d.day_start) AS at, 1 AS delta
    FROM main_job j
    JOIN days d ON j.started < d.day_end AND coalesce(j.finished, 'infinity') > d.day_start
    WHERE j.started IS NOT NULL AND j.started < %(end)s
      AND coalesce(j.finished, 'infinity') > %(start)s
    UNION ALL
    SELECT d.day, j.organization_id, least(coalesce(j.finished, 'infinity'), d.day_end), -1
    FROM main_job j
    JOIN days d ON j.started < d.day_end AND coalesce(j.finished, 'infinity') > d.day_start
    WHERE j.started IS NOT NULL AND j.started < %(end)s
      AND coalesce(j.finished, 'infinity') > %(start)s
),
concurrency AS (
    SELECT day, organization_id, max(running) AS peak_concurrent_jobs
    FROM (
        SELECT day, organization_id,
               sum(delta) OVER (PARTITION BY day, organization_id ORDER BY at, delta
                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
        FROM edges
    ) r
    GROUP BY 1, 2
),
quota AS (
    SELECT (created AT TIME ZONE 'UTC')::date AS day, organization_id,
           count(*) FILTER (WHERE decision = 'allowed' AND quota_kind = 'concurrent_jobs') AS allowed_concurrent_jobs,
           count(*) FILTER (WHERE decision = 'blocked' AND quota_kind = 'concurrent_jobs') AS blocked_concurrent_jobs,
           count(*) FILTER (WHERE decision = 'allowed' AND quota_kind = 'daily_launches')  AS allowed_daily_launches,
           count(*) FILTER (WHERE decision = 'blocked' AND quota_kind = 'daily_launches')  AS blocked_daily_launches,
           count(*) FILTER (WHERE decision = 'allowed' AND quota_kind = 'hosts')           AS allowed_hosts,
           count(*) FILTER (WHERE decision = 'blocked' AND quota_kind = 'hosts')           AS blocked_hosts,
           count(*) FILTER (WHERE decision = 'allowed' AND quota_kind = 'storage_mb')      AS allowed_storage_mb,
           count(*) FILTER (WHERE decision = 'blocked' AND quota_kind = 'storage_mb')      AS blocked_storage_mb
    FROM main_tenantquotaevent
    WHERE created >= %(start)s AND created < %(end)s
    GROUP BY 1, 2
)
SELECT d.day,
       o.id                                            AS organization_id,
       o.name                                          AS organization_name,
       coalesce(l.launches, 0)                         AS launches,
       coalesce(l.job_seconds, 0)                      AS job_seconds,
       coalesce(h.distinct_hosts, 0)                   AS distinct_hosts,
       coalesce(c.peak_concurrent_jobs, 0)             AS peak_concurrent_jobs,
       coalesce(q.allowed_concurrent_jobs, 0)          AS quota_allowed_concurrent_jobs,
       coalesce(q.blocked_concurrent_jobs, 0)          AS quota_blocked_concurrent_jobs,
       coalesce(q.allowed_daily_launches, 0)           AS quota_allowed_daily_launches,
       coalesce(q.blocked_daily_launches, 0)           AS quota_blocked_daily_launches,
       coalesce(q.allowed_hosts, 0)                    AS quota_allowed_hosts,
       coalesce(q.blocked_hosts, 0)                    AS quota_blocked_hosts,
       coalesce(q.allowed_storage_mb, 0)               AS quota_allowed_storage_mb,
       coalesce(q.blocked_storage_mb, 0)               AS quota_blocked_storage_mb,
       o.tenant_max_daily_launches,
       o.tenant_max_concurrent_jobs,
       o.tenant_max_hosts,
       coalesce(l.launches, 0)::float8 / nullif(o.tenant_max_daily_launches, 0)              AS daily_launch_utilization,
       coalesce(c.peak_concurrent_jobs, 0)::float8 / nullif(o.tenant_max_concurrent_jobs, 0) AS concurrency_utilization,
       coalesce(h.distinct_hosts, 0)::float8 / nullif(o.tenant_max_hosts, 0)                 AS host_utilization
FROM days d
JOIN main_organization o ON o.created < d.day_end
LEFT JOIN launches l ON l.day = d.day AND l.organization_id = o.id
LEFT JOIN hosts h ON h.day = d.day AND h.organization_id = o.id
LEFT JOIN concurrency c ON c.day = d.day AND c.organization_id = o.id
LEFT JOIN quota q ON q.day = d.day AND q.organization_id = o.id
ORDER BY 1, 2

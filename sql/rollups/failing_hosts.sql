-- Hosts with at least one failed or unreachable run on a UTC day (jobs count on the day they were
-- created), from job host summaries. consecutive_failing_days counts the days in a row, ending with this
-- one, on which the host had a failed run; it looks back at most 90 days before the window.
WITH daily AS (
    SELECT (j.created AT TIME ZONE 'UTC')::date                      AS day,
           s.host_id,
           count(*)                                                  AS runs,
           count(*) FILTER (WHERE s.failures = 0 AND s.dark = 0)     AS ok_runs,
           count(*) FILTER (WHERE s.failures > 0)                    AS failed_runs,
           count(*) FILTER (WHERE s.dark > 0)                        AS unreachable_runs
    FROM main_jobhostsummary s
    JOIN main_job j ON j.id = s.job_id
    WHERE j.created >= %(start)s - interval '90 days' AND j.created < %(end)s
      AND s.host_id IS NOT NULL
    GROUP BY 1, 2
),
failing_days AS (
    SELECT host_id, day, day - (row_number() OVER (PARTITION BY host_id ORDER BY day))::int AS streak
    FROM daily
    WHERE failed_runs > 0
),
streaks AS (
    SELECT host_id, day, row_number() OVER (PARTITION BY host_id, streak ORDER BY day) AS consecutive
    FROM failing_days
)
SELECT d.day,
       d.host_id,
       h.name                          AS host_name,
       h.inventory_id,
       i.name                          AS inventory_name,
       d.runs,
       d.ok_runs,
       d.failed_runs,
       d.unreachable_runs,
       h.has_active_failures,
       coalesce(s.consecutive, 0)      AS consecutive_failing_days
FROM daily d
JOIN main_host h ON h.id = d.host_id
LEFT JOIN main_inventory i ON i.id = h.inventory_id
LEFT JOIN streaks s ON s.host_id = d.host_id AND s.day = d.day
WHERE d.day >= (%(start)s AT TIME ZONE 'UTC')::date
  AND (d.failed_runs > 0 OR d.unreachable_runs > 0)
ORDER BY 1, 2

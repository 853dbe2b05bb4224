-- Deployments per UTC day (of creation), project and environment: counts by status, and duration
-- statistics over finished deployments. Build time runs from started_at to the last `build` log line;
-- deploy time from there to finished_at. The counts and sums of the timed ones make averages additive over days.
WITH window_deployments AS (
    SELECT d.id, d.environment_id, d.status, d.created_at, d.started_at, d.finished_at
    FROM deployments d
    WHERE d.created_at >= %(start)s AND d.created_at < %(end)s
),
build_end AS (
    SELECT l.deployment_id, max(l.timestamp) AS built_at
    FROM deployment_logs l
    WHERE l.deployment_id IN (SELECT id FROM window_deployments) AND l.source = 'build'
    GROUP BY 1
),
timed AS (
    SELECT w.*,
           CASE WHEN w.finished_at IS NOT NULL AND b.built_at IS NOT NULL
                THEN extract(epoch FROM b.built_at - w.started_at)::float8 END  AS build_s,
           CASE WHEN w.finished_at IS NOT NULL AND b.built_at IS NOT NULL
                THEN extract(epoch FROM w.finished_at - b.built_at)::float8 END AS deploy_s,
           CASE WHEN w.finished_at IS NOT NULL
                THEN extract(epoch FROM w.finished_at - w.started_at)::float8 END AS total_s
    FROM window_deployments w
    LEFT JOIN build_end b ON b.deployment_id = w.id
)
SELECT (t.created_at AT TIME ZONE 'UTC')::date                                     AS day,
       p.id::text                                                                  AS project_id,
       p.name                                                                      AS project_name,
       e.name                                                                      AS environment_name,
       count(*)                                                                    AS deployments,
       count(*) FILTER (WHERE t.status = 'running')                                AS status_running,
       count(*) FILTER (WHERE t.status = 'failed')                                 AS status_failed,
       count(*) FILTER (WHERE t.status = 'rolled_back')                            AS status_rolled_back,
       count(*) FILTER (WHERE t.status = 'cancelled')                              AS status_cancelled,
       count(*) FILTER (WHERE t.status IN ('pending', 'cloning', 'building', 'deploying')) AS status_in_progress,
       count(t.finished_at)                                                        AS finished_deployments,
       avg(t.build_s)                                                              AS avg_build_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY t.build_s)                      AS p50_build_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY t.build_s)                     AS p95_build_s,
       max(t.build_s)                                                              AS max_build_s,
       avg(t.deploy_s)                                                             AS avg_deploy_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY t.deploy_s)                     AS p50_deploy_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY t.deploy_s)                    AS p95_deploy_s,
       max(t.deploy_s)                                                             AS max_deploy_s,
       avg(t.total_s)                                                              AS avg_total_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY t.total_s)                     AS p95_total_s,
       max(t.total_s)                                                              AS max_total_s,
       count(t.build_s)                                                            AS timed_builds,
       coalesce(sum(t.build_s), 0)                                                 AS sum_build_s,
       coalesce(sum(t.deploy_s), 0)                                                AS sum_deploy_s,
       count(t.total_s)                                                            AS timed_totals,
       coalesce(sum(t.total_s), 0)                                                 AS sum_total_s
FROM timed t
LEFT JOIN environments e ON e.id = t.environment_id
LEFT JOIN projects p ON p.id = e.project_id
GROUP BY 1, 2, 3, 4
ORDER BY 1, 3, 4

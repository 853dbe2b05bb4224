-- Pulse alerts opened per UTC day, tenant, severity and current status, with time to close.
SELECT (a.created_at AT TIME ZONE 'UTC')::date                                   AS day,
       a.tenant_id,
       a.severity,
       a.status,
       count(*)                                                                  AS alerts,
       count(DISTINCT a.device_id)                                               AS devices,
       count(a.closed_at)                                                        AS closed_alerts,
       avg(extract(epoch FROM a.closed_at - a.created_at))::float8               AS avg_seconds_to_close,
       max(extract(epoch FROM a.closed_at - a.created_at))::float8               AS max_seconds_to_close,
       coalesce(sum(extract(epoch FROM a.closed_at - a.created_at)), 0)::float8  AS sum_seconds_to_close
FROM fleet_alert a
WHERE a.created_at >= %(start)s AND a.created_at < %(end)s
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4

-- Pulse telemetry per device, metric (each numeric key of the metrics document) and UTC hour.
SELECT (date_trunc('hour', t.time AT TIME ZONE 'UTC'))::date                     AS day,
       date_trunc('hour', t.time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'           AS hour,
       t.tenant_id,
       t.device_id,
       m.key                                                                     AS metric,
       count(*)                                                                  AS samples,
       avg(m.value::text::float8)                                                AS avg_value,
       min(m.value::text::float8)                                                AS min_value,
       max(m.value::text::float8)                                                AS max_value,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY m.value::text::float8)       AS p95_value
FROM telemetry t
CROSS JOIN LATERAL jsonb_each(t.metrics) AS m
WHERE t.time >= %(start)s AND t.time < %(end)s
  AND jsonb_typeof(m.value) = 'number'
GROUP BY 1, 2, 3, 4, 5
ORDER BY 2, 3, 4, 5

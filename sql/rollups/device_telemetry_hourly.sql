-- Pulse telemetry per device, metric (each numeric key of the metrics document) and UTC hour.
WITH readings AS (
    SELECT date_trunc('hour', t.time AT TIME ZONE 'UTC') AS hour_utc,
           t.tenant_id,
           t.device_id,
           m.key                                         AS metric,
           m.value::text::float8                         AS value
    FROM telemetry t
    CROSS JOIN LATERAL jsonb_each(t.metrics) AS m
    WHERE t.time >= %(start)s AND t.time < %(end)s
      AND jsonb_typeof(m.value) = 'number'
)
SELECT hour_utc::date                                    AS day,
       hour_utc AT TIME ZONE 'UTC'                       AS hour,
       tenant_id,
       device_id,
       metric,
       count(*)                                          AS samples,
       avg(value)                                        AS avg_value,
       min(value)                                        AS min_value,
       max(value)                                        AS max_value,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS p95_value,
       sum(value)                                        AS sum_value
FROM readings
GROUP BY hour_utc, tenant_id, device_id, metric
ORDER BY hour_utc, tenant_id, device_id, metric

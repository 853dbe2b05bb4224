-- Pulse telemetry per device, metric (each numeric key of the metrics document) and UTC hour.
-- The readings of a group are gathered unsorted and its p95 taken over them afterwards: an ordered-set
-- aggregate in the GROUP BY would forbid partial aggregation, so the parallel workers would send every
-- reading (1.15M on a busy day) to be merged instead of one row per group (PostgreSQL time 2.0-2.2 s -> 1.5-1.7 s).
WITH readings AS (
    SELECT date_trunc('hour', t.time AT TIME ZONE 'UTC') AS hour_utc,
           t.tenant_id,
           t.device_id,
           m.key                                         AS metric,
           m.value::float8                               AS value
    FROM telemetry t
    CROSS JOIN LATERAL jsonb_each(t.metrics) AS m
    WHERE t.time >= %(start)s AND t.time < %(end)s
      AND jsonb_typeof(m.value) = 'number'
), grouped AS (
    SELECT hour_utc, tenant_id, device_id, metric,
           count(*)                                      AS samples,
           avg(value)                                    AS avg_value,
           min(value)                                    AS min_value,
           max(value)                                    AS max_value,
           sum(value)                                    AS sum_value,
           array_agg(value)                              AS readings
    FROM readings
    GROUP BY hour_utc, tenant_id, device_id, metric
)
SELECT hour_utc::date                                    AS day,
       hour_utc AT TIME ZONE 'UTC'                       AS hour,
       tenant_id,
       device_id,
       metric,
       samples,
       avg_value,
       min_value,
       max_value,
       (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY r) FROM unnest(readings) AS r) AS p95_value,
       sum_value
FROM grouped
ORDER BY hour_utc, tenant_id, device_id, metric

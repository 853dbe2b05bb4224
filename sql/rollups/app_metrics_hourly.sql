-- Orchestry metrics per application, metric type, aggregation level and UTC hour: the statistics of
-- its own metrics-window query (avg, min, max, p50, p95, data points).
SELECT (date_trunc('hour', m.timestamp AT TIME ZONE 'UTC'))::date                AS day,
       date_trunc('hour', m.timestamp AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'      AS hour,
       m.app_name,
       m.metric_type,
       m.aggregation_level,
       avg(m.value)::float8                                                      AS avg_value,
       min(m.value)::float8                                                      AS min_value,
       max(m.value)::float8                                                      AS max_value,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY m.value)                      AS p50_value,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY m.value)                     AS p95_value,
       count(*)                                                                  AS data_points,
       sum(m.value::float8)                                                      AS sum_value
FROM metrics m
WHERE m.timestamp >= %(start)s AND m.timestamp < %(end)s
GROUP BY 1, 2, 3, 4, 5
ORDER BY 2, 3, 4, 5

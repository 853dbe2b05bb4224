-- Orchestry metrics per UTC day, application, metric type and aggregation level: how many samples had each
-- value. The multiset of values is what an exact percentile over a window needs (percentiles do not add
-- up across days); the seed's get_app_metrics_window statistics over any range of days come from it
-- exactly (the lake's orchestry_metrics_window macro). Values are REAL, rounded to 3 decimals by the
-- application, so a day holds far fewer distinct values than samples.
SELECT (m.timestamp AT TIME ZONE 'UTC')::date                                    AS day,
       m.app_name,
       m.metric_type,
       m.aggregation_level,
       m.value,
       count(*)                                                                  AS samples
FROM metrics m
WHERE m.timestamp >= %(start)s AND m.timestamp < %(end)s
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5

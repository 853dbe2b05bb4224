-- Orchestry events per application, event type and UTC hour with counts per severity: the shape of
-- its hourly event compression, kept instead of deleted.
SELECT (date_trunc('hour', e.timestamp AT TIME ZONE 'UTC'))::date                AS day,
       date_trunc('hour', e.timestamp AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'      AS hour,
       e.app_name,
       e.event_type,
       count(*)                                                                  AS events,
       count(*) FILTER (WHERE e.severity = 'debug')                              AS debug,
       count(*) FILTER (WHERE e.severity = 'info')                               AS info,
       count(*) FILTER (WHERE e.severity = 'warning')                            AS warning,
       count(*) FILTER (WHERE e.severity = 'error')                              AS error,
       count(*) FILTER (WHERE e.severity = 'critical')                           AS critical,
       count(*) FILTER (WHERE e.severity IS NULL)                                AS unspecified
FROM events e
WHERE e.timestamp >= %(start)s AND e.timestamp < %(end)s
GROUP BY 1, 2, 3, 4
ORDER BY 2, 3, 4

-- Reconciliation of device_telemetry_hourly: the source count that the daily sum of `samples` must equal.
-- Takes %(start)s and %(end)s, a window of whole UTC days.
SELECT count(*) FROM telemetry t, jsonb_each(t.metrics) m WHERE jsonb_typeof(m.value) = 'number' AND t.time >= %(start)s AND t.time < %(end)s

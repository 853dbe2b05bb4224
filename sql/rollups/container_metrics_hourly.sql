-- Container metrics per UTC hour: CPU and memory percent statistics, and network/block I/O deltas.
-- The I/O columns are cumulative counters since the container started; a delta is the sum of the
-- increases between consecutive samples, and a counter that goes down (a restart) counts from zero.
-- The sample just before the window is read too, so the first hour's delta is complete.
-- Grouped by container id first and named after: the names join 13k hourly rows, not 150k samples
-- (PostgreSQL time 0.42-0.45 s -> 0.26-0.27 s).
WITH samples AS (
    SELECT m.container_id, m.timestamp, m.cpu_percent, m.memory_percent,
           m.network_rx, m.network_tx, m.block_read, m.block_write,
           lag(m.network_rx) OVER w AS prev_rx, lag(m.network_tx) OVER w AS prev_tx,
           lag(m.block_read) OVER w AS prev_read, lag(m.block_write) OVER w AS prev_write
    FROM container_metrics m
    WHERE m.timestamp >= %(start)s - interval '1 hour' AND m.timestamp < %(end)s
    WINDOW w AS (PARTITION BY m.container_id ORDER BY m.timestamp)
),
deltas AS (
    SELECT s.*,
           CASE WHEN prev_rx IS NULL THEN 0 WHEN network_rx >= prev_rx THEN network_rx - prev_rx ELSE network_rx END AS d_rx,
           CASE WHEN prev_tx IS NULL THEN 0 WHEN network_tx >= prev_tx THEN network_tx - prev_tx ELSE network_tx END AS d_tx,
           CASE WHEN prev_read IS NULL THEN 0 WHEN block_read >= prev_read THEN block_read - prev_read ELSE block_read END AS d_read,
           CASE WHEN prev_write IS NULL THEN 0 WHEN block_write >= prev_write THEN block_write - prev_write ELSE block_write END AS d_write
    FROM samples s
    WHERE s.timestamp >= %(start)s
),
hourly AS (
    SELECT date_trunc('hour', d.timestamp AT TIME ZONE 'UTC')                       AS hour_utc,
           d.container_id,
           count(*)                                                                 AS samples,
           avg(d.cpu_percent)::float8                                               AS cpu_avg,
           max(d.cpu_percent)::float8                                               AS cpu_max,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY d.cpu_percent)              AS cpu_p95,
           avg(d.memory_percent)::float8                                            AS memory_avg,
           max(d.memory_percent)::float8                                            AS memory_max,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY d.memory_percent)           AS memory_p95,
           sum(d.d_rx)::bigint                                                      AS network_rx_bytes,
           sum(d.d_tx)::bigint                                                      AS network_tx_bytes,
           sum(d.d_read)::bigint                                                    AS block_read_bytes,
           sum(d.d_write)::bigint                                                   AS block_write_bytes,
           count(d.cpu_percent)                                                     AS cpu_samples,
           coalesce(sum(d.cpu_percent::float8), 0)                                  AS cpu_sum,
           count(d.memory_percent)                                                  AS memory_samples,
           coalesce(sum(d.memory_percent::float8), 0)                               AS memory_sum
    FROM deltas d
    GROUP BY 1, 2
)
SELECT h.hour_utc::date                                                             AS day,
       h.hour_utc AT TIME ZONE 'UTC'                                                AS hour,
       h.container_id::text                                                         AS container_id,
       c.name                                                                       AS container_name,
       p.name                                                                       AS project_name,
       e.name                                                                       AS environment_name,
       h.samples, h.cpu_avg, h.cpu_max, h.cpu_p95, h.memory_avg, h.memory_max, h.memory_p95,
       h.network_rx_bytes, h.network_tx_bytes, h.block_read_bytes, h.block_write_bytes,
       h.cpu_samples, h.cpu_sum, h.memory_samples, h.memory_sum
FROM hourly h
LEFT JOIN containers c ON c.id = h.container_id
LEFT JOIN deployments dep ON dep.id = c.deployment_id
LEFT JOIN environments e ON e.id = dep.environment_id
LEFT JOIN projects p ON p.id = e.project_id
ORDER BY 2, 3

-- Orchestry autoscaler: the DDL of its "Database Schema" page, verbatim.
-- Left out, because PostgreSQL rejects them (the application's own DDL fails the same way):
--   CREATE INDEX idx_applications_spec_image (text has no default GIN operator class)
--   CREATE INDEX idx_events_recent (NOW() in an index predicate is not IMMUTABLE)
--   CREATE INDEX idx_metrics_app_type_recent (NOW() in an index predicate is not IMMUTABLE)
-- Left out as well: the commented partition example and the pg_cron schedule (no pg_cron here).
-- cleanup_old_data() is the application's own destructive cleanup; forge_assets never calls it.

CREATE TABLE applications (
    -- Primary identification
    name VARCHAR(253) PRIMARY KEY,              -- DNS-compatible app name

    -- Application specification
    spec JSONB NOT NULL,                        -- Complete app specification
    status VARCHAR(50) NOT NULL DEFAULT 'registered', -- Current status

    -- Timestamps
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    -- Scaling information
    replicas INTEGER DEFAULT 0,                 -- Current replica count
    desired_replicas INTEGER DEFAULT 0,         -- Desired replica count
    last_scaled_at TIMESTAMP WITH TIME ZONE,    -- Last scaling operation

    -- Configuration
    mode VARCHAR(20) DEFAULT 'auto',            -- Scaling mode (auto/manual)

    -- Constraints
    CONSTRAINT valid_status CHECK (status IN (
        'registered', 'starting', 'running', 'stopping', 'stopped', 'error', 'updating'
    )),
    CONSTRAINT valid_mode CHECK (mode IN ('auto', 'manual')),
    CONSTRAINT valid_replicas CHECK (replicas >= 0),
    CONSTRAINT valid_desired_replicas CHECK (desired_replicas >= 0)
);

CREATE INDEX idx_applications_status ON applications(status);

CREATE INDEX idx_applications_mode ON applications(mode);

CREATE INDEX idx_applications_updated_at ON applications(updated_at DESC);

CREATE TABLE instances (
    -- Primary key
    id SERIAL PRIMARY KEY,

    -- Application relationship
    app_name VARCHAR(253) NOT NULL REFERENCES applications(name) ON DELETE CASCADE,

    -- Container identification
    container_id VARCHAR(128) UNIQUE NOT NULL,  -- Docker container ID
    container_name VARCHAR(253) NOT NULL,       -- Human-readable container name
    replica_index INTEGER NOT NULL,             -- Replica number (0, 1, 2, ...)

    -- Network configuration
    ip INET NOT NULL,                           -- Container IP address
    port INTEGER NOT NULL,                      -- Primary application port

    -- Status information
    status VARCHAR(50) NOT NULL DEFAULT 'starting',
    health_status VARCHAR(20) DEFAULT 'unknown', -- Health check status

    -- Timestamps
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    started_at TIMESTAMP WITH TIME ZONE,        -- When container started
    last_health_check TIMESTAMP WITH TIME ZONE,

    -- Failure tracking
    failure_count INTEGER DEFAULT 0,
    consecutive_failures INTEGER DEFAULT 0,
    last_failure_at TIMESTAMP WITH TIME ZONE,

    -- Resource usage (latest values)
    cpu_percent REAL DEFAULT 0,
    memory_percent REAL DEFAULT 0,
    memory_usage_bytes BIGINT DEFAULT 0,

    -- Constraints
    CONSTRAINT valid_status CHECK (status IN (
        'starting', 'running', 'stopping', 'stopped', 'error', 'draining'
    )),
    CONSTRAINT valid_health_status CHECK (health_status IN (
        'unknown', 'healthy', 'unhealthy', 'starting'
    )),
    CONSTRAINT valid_replica_index CHECK (replica_index >= 0),
    CONSTRAINT valid_port CHECK (port > 0 AND port <= 65535),
    CONSTRAINT valid_failure_count CHECK (failure_count >= 0),
    CONSTRAINT valid_cpu_percent CHECK (cpu_percent >= 0),
    CONSTRAINT valid_memory_percent CHECK (memory_percent >= 0 AND memory_percent <= 100),

    -- Unique constraint for app + replica
    UNIQUE(app_name, replica_index)
);

CREATE INDEX idx_instances_app_name ON instances(app_name);

CREATE INDEX idx_instances_status ON instances(status);

CREATE INDEX idx_instances_health_status ON instances(health_status);

CREATE INDEX idx_instances_container_id ON instances(container_id);

CREATE INDEX idx_instances_updated_at ON instances(updated_at DESC);

CREATE INDEX idx_instances_app_status ON instances(app_name, status);

CREATE INDEX idx_instances_health_check ON instances(last_health_check DESC);

CREATE TABLE events (
    -- Primary key
    id SERIAL PRIMARY KEY,

    -- Event identification
    event_type VARCHAR(50) NOT NULL,            -- Type of event
    event_category VARCHAR(30) NOT NULL DEFAULT 'application', -- Event category

    -- Associated resources
    app_name VARCHAR(253) REFERENCES applications(name) ON DELETE SET NULL,
    container_id VARCHAR(128),                  -- Optional container reference

    -- Event details
    message TEXT NOT NULL,                      -- Human-readable message
    details JSONB,                              -- Structured event data
    severity VARCHAR(20) DEFAULT 'info',       -- Event severity level

    -- Timestamps
    timestamp TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    -- Source information
    source VARCHAR(50) DEFAULT 'controller',    -- Component that generated event
    node_id VARCHAR(100),                       -- Cluster node ID (if applicable)

    -- Constraints
    CONSTRAINT valid_event_type CHECK (event_type IN (
        'registration', 'scaling', 'health', 'config', 'deployment', 
        'error', 'warning', 'network', 'resource', 'security'
    )),
    CONSTRAINT valid_event_category CHECK (event_category IN (
        'application', 'system', 'cluster', 'security', 'performance'
    )),
    CONSTRAINT valid_severity CHECK (severity IN (
        'debug', 'info', 'warning', 'error', 'critical'
    ))
);

CREATE INDEX idx_events_app_name_timestamp ON events(app_name, timestamp DESC);

CREATE INDEX idx_events_type_timestamp ON events(event_type, timestamp DESC);

CREATE INDEX idx_events_timestamp ON events(timestamp DESC);

CREATE INDEX idx_events_severity ON events(severity, timestamp DESC);

CREATE INDEX idx_events_category ON events(event_category, timestamp DESC);

CREATE INDEX idx_events_container ON events(container_id, timestamp DESC);

CREATE TABLE metrics (
    -- Primary key
    id SERIAL PRIMARY KEY,

    -- Metric identification
    app_name VARCHAR(253) NOT NULL REFERENCES applications(name) ON DELETE CASCADE,
    metric_type VARCHAR(50) NOT NULL,           -- Type of metric

    -- Time series data
    timestamp TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    value REAL NOT NULL,                        -- Metric value

    -- Additional metadata
    labels JSONB,                               -- Key-value labels
    unit VARCHAR(20),                           -- Metric unit (%, bytes, ms, etc.)

    -- Aggregation level
    aggregation_level VARCHAR(20) DEFAULT 'instance', -- instance, app, system

    -- Constraints
    CONSTRAINT valid_metric_type CHECK (metric_type IN (
        'cpu_percent', 'memory_percent', 'memory_bytes', 'rps', 
        'latency_p50', 'latency_p95', 'latency_p99', 'active_connections',
        'error_rate', 'response_time', 'queue_length', 'disk_usage'
    )),
    CONSTRAINT valid_aggregation_level CHECK (aggregation_level IN (
        'instance', 'app', 'system'
    ))
);

CREATE INDEX idx_metrics_app_timestamp ON metrics(app_name, timestamp DESC);

CREATE INDEX idx_metrics_type_timestamp ON metrics(metric_type, timestamp DESC);

CREATE INDEX idx_metrics_timestamp ON metrics(timestamp DESC);

CREATE INDEX idx_metrics_app_type_time ON metrics(app_name, metric_type, timestamp DESC);

CREATE TABLE scaling_policies (
    -- Primary key
    app_name VARCHAR(253) PRIMARY KEY REFERENCES applications(name) ON DELETE CASCADE,

    -- Basic scaling parameters
    min_replicas INTEGER NOT NULL DEFAULT 1,
    max_replicas INTEGER NOT NULL DEFAULT 5,

    -- Performance targets
    target_rps_per_replica INTEGER DEFAULT 50,
    max_p95_latency_ms INTEGER DEFAULT 250,
    max_cpu_percent REAL DEFAULT 70.0,
    max_memory_percent REAL DEFAULT 75.0,
    max_connections_per_replica INTEGER DEFAULT 100,

    -- Scaling behavior
    scale_out_threshold_pct INTEGER DEFAULT 80,
    scale_in_threshold_pct INTEGER DEFAULT 30,
    cooldown_seconds INTEGER DEFAULT 180,
    evaluation_window_seconds INTEGER DEFAULT 60,

    -- Advanced settings
    max_scale_out_step INTEGER DEFAULT 0,       -- 0 means no limit
    max_scale_in_step INTEGER DEFAULT 1,
    stabilization_window_seconds INTEGER DEFAULT 300,

    -- Metric weights (for future use)
    cpu_weight REAL DEFAULT 1.0,
    memory_weight REAL DEFAULT 1.0,
    rps_weight REAL DEFAULT 1.0,
    latency_weight REAL DEFAULT 1.5,
    connection_weight REAL DEFAULT 0.8,

    -- Timestamps
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    -- Constraints
    CONSTRAINT valid_replica_bounds CHECK (min_replicas <= max_replicas),
    CONSTRAINT valid_min_replicas CHECK (min_replicas >= 0),
    CONSTRAINT valid_max_replicas CHECK (max_replicas >= 1),
    CONSTRAINT valid_thresholds CHECK (scale_in_threshold_pct < scale_out_threshold_pct),
    CONSTRAINT valid_percentages CHECK (
        scale_out_threshold_pct BETWEEN 1 AND 100 AND
        scale_in_threshold_pct BETWEEN 1 AND 100
    ),
    CONSTRAINT valid_weights CHECK (
        cpu_weight >= 0 AND memory_weight >= 0 AND rps_weight >= 0 AND
        latency_weight >= 0 AND connection_weight >= 0
    )
);

CREATE INDEX idx_scaling_policies_updated_at ON scaling_policies(updated_at DESC);

CREATE TABLE health_checks (
    -- Primary key
    id SERIAL PRIMARY KEY,

    -- Application relationship
    app_name VARCHAR(253) NOT NULL REFERENCES applications(name) ON DELETE CASCADE,

    -- Health check configuration
    protocol VARCHAR(10) NOT NULL DEFAULT 'HTTP',
    path VARCHAR(500),                          -- HTTP path
    port INTEGER NOT NULL,
    method VARCHAR(10) DEFAULT 'GET',           -- HTTP method
    headers JSONB,                              -- HTTP headers
    body TEXT,                                  -- Request body
    expected_status_codes INTEGER[] DEFAULT ARRAY[200],

    -- Timing configuration
    initial_delay_seconds INTEGER DEFAULT 30,
    period_seconds INTEGER DEFAULT 30,
    timeout_seconds INTEGER DEFAULT 5,
    failure_threshold INTEGER DEFAULT 3,
    success_threshold INTEGER DEFAULT 1,

    -- Status
    enabled BOOLEAN DEFAULT true,

    -- Timestamps
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    -- Constraints
    CONSTRAINT valid_protocol CHECK (protocol IN ('HTTP', 'TCP')),
    CONSTRAINT valid_method CHECK (method IN ('GET', 'POST', 'PUT', 'HEAD')),
    CONSTRAINT valid_port CHECK (port > 0 AND port <= 65535),
    CONSTRAINT valid_timings CHECK (
        initial_delay_seconds >= 0 AND
        period_seconds > 0 AND
        timeout_seconds > 0 AND
        failure_threshold > 0 AND
        success_threshold > 0
    ),

    -- Unique health check per app
    UNIQUE(app_name)
);

CREATE INDEX idx_health_checks_app_name ON health_checks(app_name);

CREATE INDEX idx_health_checks_enabled ON health_checks(enabled);

CREATE INDEX idx_instances_app_status_health ON instances(app_name, status, health_status);

CREATE INDEX idx_events_app_type_severity ON events(app_name, event_type, severity, timestamp DESC);

CREATE INDEX idx_applications_active ON applications(name, status, updated_at)
WHERE status IN ('running', 'starting', 'updating');

CREATE INDEX idx_instances_active ON instances(app_name, status, health_status, updated_at)
WHERE status IN ('running', 'starting');

CREATE OR REPLACE FUNCTION cleanup_old_data()
RETURNS TABLE(table_name TEXT, deleted_count INTEGER) AS $$
BEGIN
    -- Clean up old events (keep 30 days)
    DELETE FROM events WHERE timestamp < NOW() - INTERVAL '30 days';
    GET DIAGNOSTICS deleted_count = ROW_COUNT;
    table_name := 'events';
    RETURN NEXT;

    -- Clean up old metrics (keep 7 days for instance level, 30 days for app level)
    DELETE FROM metrics 
    WHERE timestamp < NOW() - INTERVAL '7 days' 
      AND aggregation_level = 'instance';
    GET DIAGNOSTICS deleted_count = ROW_COUNT;
    table_name := 'metrics (instance)';
    RETURN NEXT;

    DELETE FROM metrics 
    WHERE timestamp < NOW() - INTERVAL '30 days' 
      AND aggregation_level = 'app';
    GET DIAGNOSTICS deleted_count = ROW_COUNT;
    table_name := 'metrics (app)';
    RETURN NEXT;

    -- Clean up stopped instances (keep 7 days)
    DELETE FROM instances 
    WHERE status = 'stopped' 
      AND updated_at < NOW() - INTERVAL '7 days';
    GET DIAGNOSTICS deleted_count = ROW_COUNT;
    table_name := 'instances (stopped)';
    RETURN NEXT;
END;
$$ LANGUAGE plpgsql;

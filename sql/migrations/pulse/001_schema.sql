-- OpsConductor-Pulse IoT fleet. Its seed names the tables but not their columns; these follow the
-- names it uses (tenant_id text keys, device_registry, fleet_alert, notification_log, subscriptions).
-- telemetry and system_metrics are TimescaleDB hypertables there; here they are natively RANGE
-- partitioned by day on "time" (the writer creates a day's partition before writing into it, as
-- TimescaleDB creates chunks). fleet_alert severity and status carry no CHECK constraint in this
-- schema: the data-quality checks enforce the documented sets.

CREATE TABLE tenants (
    tenant_id      text PRIMARY KEY,
    name           text NOT NULL,
    status         text NOT NULL DEFAULT 'ACTIVE',
    contact_email  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subscriptions (
    subscription_id  text PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    tier             text NOT NULL,
    device_limit     integer NOT NULL CHECK (device_limit >= 0),
    status           text NOT NULL DEFAULT 'ACTIVE',
    term_start       timestamptz NOT NULL,
    term_end         timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_subscriptions_tenant ON subscriptions (tenant_id);

CREATE TABLE device_registry (
    tenant_id         text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    device_id         text NOT NULL,
    site_id           text NOT NULL,
    status            text NOT NULL DEFAULT 'ACTIVE',
    model             text,
    firmware_version  text,
    api_token_hash    text,
    last_seen_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, device_id)
);
CREATE INDEX idx_device_registry_site ON device_registry (tenant_id, site_id);

CREATE TABLE telemetry (
    time       timestamptz NOT NULL,
    tenant_id  text NOT NULL,
    device_id  text NOT NULL,
    site_id    text NOT NULL,
    msg_type   text NOT NULL DEFAULT 'telemetry',
    seq        bigint NOT NULL DEFAULT 0,
    metrics    jsonb NOT NULL DEFAULT '{}'
) PARTITION BY RANGE (time);
CREATE INDEX idx_telemetry_time ON telemetry (time DESC);
CREATE INDEX idx_telemetry_device_time ON telemetry (tenant_id, device_id, time DESC);

CREATE TABLE system_metrics (
    time         timestamptz NOT NULL,
    service      text NOT NULL,
    metric_name  text NOT NULL,
    value        double precision NOT NULL,
    tags         jsonb NOT NULL DEFAULT '{}'
) PARTITION BY RANGE (time);
CREATE INDEX idx_system_metrics_time ON system_metrics (time DESC);
CREATE INDEX idx_system_metrics_name_time ON system_metrics (metric_name, time DESC);

CREATE TABLE fleet_alert (
    id           bigserial PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz,
    site_id      text,
    device_id    text,
    alert_type   text NOT NULL,
    fingerprint  text NOT NULL,
    status       text NOT NULL DEFAULT 'OPEN',
    severity     text NOT NULL,
    summary      text NOT NULL DEFAULT '',
    details      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX idx_fleet_alert_created ON fleet_alert (created_at);
CREATE INDEX idx_fleet_alert_tenant_status ON fleet_alert (tenant_id, status);

CREATE TABLE notification_log (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    alert_id    bigint REFERENCES fleet_alert (id) ON DELETE SET NULL,
    channel     text NOT NULL,
    recipient   text NOT NULL,
    status      text NOT NULL,
    error       text,
    sent_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_notification_log_sent_at ON notification_log (sent_at);

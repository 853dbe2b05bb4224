-- Forge event-driven automation, drift detection, multi-tenancy and WebAuthn challenge tables.
-- Column lists follow the seed where it gives them (main_tenantusage, main_tenantquotaevent).

CREATE TABLE main_eventrule (
    id               serial PRIMARY KEY,
    created          timestamptz NOT NULL,
    modified         timestamptz NOT NULL,
    name             varchar(512) NOT NULL,
    organization_id  integer REFERENCES main_organization (id) ON DELETE CASCADE,
    conditions       jsonb NOT NULL DEFAULT '{}',
    actions          jsonb NOT NULL DEFAULT '[]',
    webhook_secret   varchar(256) NOT NULL DEFAULT '',
    enabled          boolean NOT NULL DEFAULT true
);

CREATE TABLE main_eventlog (
    id               bigserial PRIMARY KEY,
    created          timestamptz NOT NULL,
    modified         timestamptz NOT NULL,
    organization_id  integer REFERENCES main_organization (id) ON DELETE SET NULL,
    event_rule_id    integer REFERENCES main_eventrule (id) ON DELETE SET NULL,
    source_ip        inet,
    headers          jsonb NOT NULL DEFAULT '{}',
    payload          jsonb NOT NULL DEFAULT '{}',
    status           varchar(16) NOT NULL,
    actions_taken    jsonb NOT NULL DEFAULT '[]',
    error            text NOT NULL DEFAULT ''
);
CREATE INDEX main_eventlog_created_idx ON main_eventlog (created);

CREATE TABLE main_hostfactsnapshot (
    id          bigserial PRIMARY KEY,
    created     timestamptz NOT NULL,
    modified    timestamptz NOT NULL,
    host_id     integer REFERENCES main_host (id) ON DELETE CASCADE,
    job_id      integer REFERENCES main_job (id) ON DELETE SET NULL,
    facts       jsonb NOT NULL DEFAULT '{}',
    facts_hash  varchar(64) NOT NULL
);
CREATE INDEX main_hostfactsnapshot_created_idx ON main_hostfactsnapshot (created);
CREATE INDEX main_hostfactsnapshot_host_id_idx ON main_hostfactsnapshot (host_id, created);

CREATE TABLE main_driftdetection (
    id                    bigserial PRIMARY KEY,
    created               timestamptz NOT NULL,
    modified              timestamptz NOT NULL,
    host_id               integer REFERENCES main_host (id) ON DELETE CASCADE,
    snapshot_id           bigint REFERENCES main_hostfactsnapshot (id) ON DELETE CASCADE,
    previous_snapshot_id  bigint REFERENCES main_hostfactsnapshot (id) ON DELETE SET NULL,
    fact_path             varchar(1024) NOT NULL,
    change_type           varchar(16) NOT NULL,
    old_value             text,
    new_value             text,
    severity              varchar(16) NOT NULL DEFAULT 'info'
);
CREATE INDEX main_driftdetection_created_idx ON main_driftdetection (created);

CREATE TABLE main_tenantusage (
    id                           serial PRIMARY KEY,
    organization_id              integer NOT NULL UNIQUE REFERENCES main_organization (id) ON DELETE CASCADE,
    concurrent_jobs_count        integer NOT NULL DEFAULT 0,
    launches_today_count         integer NOT NULL DEFAULT 0,
    launches_today_window_start  timestamptz,
    hosts_count                  integer NOT NULL DEFAULT 0,
    storage_mb_used              integer NOT NULL DEFAULT 0,
    last_recalculated_at         timestamptz,
    created                      timestamptz NOT NULL,
    modified                     timestamptz NOT NULL
);

CREATE TABLE main_tenantquotaevent (
    id                        bigserial PRIMARY KEY,
    organization_id           integer REFERENCES main_organization (id) ON DELETE SET NULL,
    organization_name         varchar(512) NOT NULL DEFAULT '',
    quota_kind                varchar(32) NOT NULL,
    decision                  varchar(16) NOT NULL,
    current_value             integer NOT NULL DEFAULT 0,
    limit_value               integer NOT NULL DEFAULT 0,
    triggered_by_id           integer REFERENCES auth_user (id) ON DELETE SET NULL,
    unified_job_template_id   integer REFERENCES main_jobtemplate (id) ON DELETE SET NULL,
    message                   text NOT NULL DEFAULT '',
    created                   timestamptz NOT NULL,
    modified                  timestamptz NOT NULL
);
CREATE INDEX main_tenantquotaevent_created_idx ON main_tenantquotaevent (created);

CREATE TABLE main_webauthnregistrationchallenge (
    id          serial PRIMARY KEY,
    user_id     integer NOT NULL REFERENCES auth_user (id) ON DELETE CASCADE,
    challenge   varchar(255) NOT NULL,
    created     timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX main_webauthnregistrationchallenge_created_idx ON main_webauthnregistrationchallenge (created);

CREATE TABLE main_webauthnauthenticationchallenge (
    id          serial PRIMARY KEY,
    user_id     integer NOT NULL REFERENCES auth_user (id) ON DELETE CASCADE,
    challenge   varchar(255) NOT NULL,
    created     timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX main_webauthnauthenticationchallenge_created_idx ON main_webauthnauthenticationchallenge (created);

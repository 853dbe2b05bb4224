-- Forge automation controller: core resources (stand-in for the application's own Django migrations).
-- Tables and columns follow the Forge seed (06 — Database Schema) and AWX where the seed lists none.
-- The seed's diagnostic queries read main_job.status/elapsed/created and main_jobtemplate.id/name
-- directly, so AWX's polymorphic base tables are flattened into main_job and main_jobtemplate.

CREATE TABLE main_organization (
    id                          serial PRIMARY KEY,
    created                     timestamptz NOT NULL,
    modified                    timestamptz NOT NULL,
    name                        varchar(512) NOT NULL UNIQUE,
    description                 text NOT NULL DEFAULT '',
    max_hosts                   integer NOT NULL DEFAULT 0 CHECK (max_hosts >= 0),
    -- Multi-tenancy (Tier 3.2): additive, nullable or with safe defaults.
    is_tenant_root              boolean NOT NULL DEFAULT false,
    tenant_max_concurrent_jobs  integer,
    tenant_max_daily_launches   integer,
    tenant_max_hosts            integer,
    tenant_max_storage_mb       integer,
    tenant_isolation_strict     boolean NOT NULL DEFAULT false,
    tenant_logo_url             varchar(1024) NOT NULL DEFAULT '',
    tenant_primary_color        varchar(16) NOT NULL DEFAULT '',
    tenant_secondary_color      varchar(16) NOT NULL DEFAULT '',
    tenant_custom_domain        varchar(255),
    tenant_contact_email        varchar(254) NOT NULL DEFAULT ''
);
CREATE INDEX main_organization_tenant_custom_domain_idx ON main_organization (tenant_custom_domain);

CREATE TABLE auth_user (
    id            serial PRIMARY KEY,
    password      varchar(128) NOT NULL,
    last_login    timestamptz,
    is_superuser  boolean NOT NULL DEFAULT false,
    username      varchar(150) NOT NULL UNIQUE,
    first_name    varchar(150) NOT NULL DEFAULT '',
    last_name     varchar(150) NOT NULL DEFAULT '',
    email         varchar(254) NOT NULL DEFAULT '',
    is_staff      boolean NOT NULL DEFAULT false,
    is_active     boolean NOT NULL DEFAULT true,
    date_joined   timestamptz NOT NULL
);

CREATE TABLE main_inventory (
    id                          serial PRIMARY KEY,
    created                     timestamptz NOT NULL,
    modified                    timestamptz NOT NULL,
    name                        varchar(512) NOT NULL,
    description                 text NOT NULL DEFAULT '',
    organization_id             integer REFERENCES main_organization (id) ON DELETE SET NULL,
    kind                        varchar(32) NOT NULL DEFAULT '',
    variables                   text NOT NULL DEFAULT '',
    total_hosts                 integer NOT NULL DEFAULT 0,
    hosts_with_active_failures  integer NOT NULL DEFAULT 0,
    UNIQUE (name, organization_id)
);
CREATE INDEX main_inventory_organization_id_idx ON main_inventory (organization_id);

CREATE TABLE main_host (
    id                   serial PRIMARY KEY,
    created              timestamptz NOT NULL,
    modified             timestamptz NOT NULL,
    name                 varchar(512) NOT NULL,
    description          text NOT NULL DEFAULT '',
    inventory_id         integer NOT NULL REFERENCES main_inventory (id) ON DELETE CASCADE,
    enabled              boolean NOT NULL DEFAULT true,
    instance_id          varchar(1024) NOT NULL DEFAULT '',
    variables            text NOT NULL DEFAULT '',
    has_active_failures  boolean NOT NULL DEFAULT false,
    last_job_id          integer,
    UNIQUE (name, inventory_id)
);
CREATE INDEX main_host_inventory_id_idx ON main_host (inventory_id);

CREATE TABLE main_jobtemplate (
    id                 serial PRIMARY KEY,
    created            timestamptz NOT NULL,
    modified           timestamptz NOT NULL,
    name               varchar(512) NOT NULL,
    description        text NOT NULL DEFAULT '',
    organization_id    integer REFERENCES main_organization (id) ON DELETE SET NULL,
    inventory_id       integer REFERENCES main_inventory (id) ON DELETE SET NULL,
    playbook           varchar(1024) NOT NULL DEFAULT '',
    job_type           varchar(64) NOT NULL DEFAULT 'run',
    forks              integer NOT NULL DEFAULT 0 CHECK (forks >= 0),
    timeout            integer NOT NULL DEFAULT 0,
    UNIQUE (name, organization_id)
);

CREATE TABLE main_job (
    id                 serial PRIMARY KEY,
    created            timestamptz NOT NULL,
    modified           timestamptz NOT NULL,
    name               varchar(512) NOT NULL,
    description        text NOT NULL DEFAULT '',
    launch_type        varchar(20) NOT NULL,
    status             varchar(20) NOT NULL,
    failed             boolean NOT NULL DEFAULT false,
    started            timestamptz,
    finished           timestamptz,
    elapsed            numeric(12, 3) NOT NULL DEFAULT 0,
    job_explanation    text NOT NULL DEFAULT '',
    execution_node     varchar(512) NOT NULL DEFAULT '',
    job_template_id    integer REFERENCES main_jobtemplate (id) ON DELETE SET NULL,
    inventory_id       integer REFERENCES main_inventory (id) ON DELETE SET NULL,
    organization_id    integer REFERENCES main_organization (id) ON DELETE SET NULL,
    created_by_id      integer REFERENCES auth_user (id) ON DELETE SET NULL,
    playbook           varchar(1024) NOT NULL DEFAULT '',
    forks              integer NOT NULL DEFAULT 0,
    job_type           varchar(64) NOT NULL DEFAULT 'run'
);
CREATE INDEX main_job_created_idx ON main_job (created);
CREATE INDEX main_job_status_idx ON main_job (status);
CREATE INDEX main_job_job_template_id_idx ON main_job (job_template_id);
CREATE INDEX main_job_organization_id_created_idx ON main_job (organization_id, created);

CREATE TABLE main_jobhostsummary (
    id          serial PRIMARY KEY,
    created     timestamptz NOT NULL,
    modified    timestamptz NOT NULL,
    job_id      integer NOT NULL REFERENCES main_job (id) ON DELETE CASCADE,
    host_id     integer REFERENCES main_host (id) ON DELETE SET NULL,
    host_name   varchar(1024) NOT NULL DEFAULT '',
    changed     integer NOT NULL DEFAULT 0,
    dark        integer NOT NULL DEFAULT 0,
    failures    integer NOT NULL DEFAULT 0,
    ignored     integer NOT NULL DEFAULT 0,
    ok          integer NOT NULL DEFAULT 0,
    processed   integer NOT NULL DEFAULT 0,
    rescued     integer NOT NULL DEFAULT 0,
    skipped     integer NOT NULL DEFAULT 0,
    failed      boolean NOT NULL DEFAULT false,
    UNIQUE (job_id, host_id)
);
CREATE INDEX main_jobhostsummary_host_id_idx ON main_jobhostsummary (host_id);
CREATE INDEX main_jobhostsummary_created_idx ON main_jobhostsummary (created);

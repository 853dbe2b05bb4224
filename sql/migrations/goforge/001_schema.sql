-- GoForge PaaS: the schema of its migrations 001-010 (internal/database/migrations/postgres/), as its
-- "Database Schema Reference" documents it. One deviation: primary keys default to gen_random_uuid()
-- (built in since PostgreSQL 13, also v4 UUIDs) instead of uuid-ossp's uuid_generate_v4(), because
-- servers without contrib extensions (the embedded one among them) cannot create uuid-ossp.

CREATE TABLE users (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email                varchar(255) UNIQUE NOT NULL,
    password_hash        varchar(255),
    github_id            bigint UNIQUE,
    github_username      varchar(255),
    github_access_token  text,
    avatar_url           text,
    created_at           timestamptz DEFAULT NOW(),
    updated_at           timestamptz DEFAULT NOW()
);
CREATE INDEX idx_users_email ON users (email);
CREATE INDEX idx_users_github_id ON users (github_id);

CREATE TABLE sessions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid REFERENCES users (id) ON DELETE CASCADE,
    token_hash      varchar(64) UNIQUE NOT NULL,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz DEFAULT NOW(),
    last_active_at  timestamptz DEFAULT NOW()
);
CREATE INDEX idx_sessions_user_id ON sessions (user_id);
CREATE INDEX idx_sessions_token_hash ON sessions (token_hash);
CREATE INDEX idx_sessions_expires_at ON sessions (expires_at);

CREATE TABLE git_sources (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid REFERENCES users (id) ON DELETE CASCADE,
    name             varchar(255) NOT NULL,
    type             varchar(50) NOT NULL CHECK (type IN ('github', 'gitlab', 'gitea', 'ssh')),
    api_url          text,
    access_token     text,
    ssh_private_key  text,
    is_default       boolean DEFAULT FALSE,
    created_at       timestamptz DEFAULT NOW(),
    updated_at       timestamptz DEFAULT NOW()
);
CREATE INDEX idx_git_sources_user_id ON git_sources (user_id);

CREATE TABLE projects (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                uuid REFERENCES users (id) ON DELETE CASCADE,
    name                   varchar(255) NOT NULL,
    description            text,
    git_source_id          uuid REFERENCES git_sources (id) ON DELETE SET NULL,
    repository_url         text NOT NULL,
    repository_name        varchar(255),
    default_branch         varchar(255) DEFAULT 'main',
    dockerfile_path        varchar(255) DEFAULT 'Dockerfile',
    docker_compose_path    varchar(255),
    build_context          varchar(255) DEFAULT '.',
    build_args             jsonb DEFAULT '{}',
    health_check_path      varchar(255) DEFAULT '/',
    health_check_interval  integer DEFAULT 30,
    auto_deploy            boolean DEFAULT TRUE,
    created_at             timestamptz DEFAULT NOW(),
    updated_at             timestamptz DEFAULT NOW()
);
CREATE INDEX idx_projects_user_id ON projects (user_id);
CREATE INDEX idx_projects_git_source_id ON projects (git_source_id);

CREATE TABLE environments (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id    uuid REFERENCES projects (id) ON DELETE CASCADE,
    name          varchar(50) NOT NULL,
    domain        varchar(255),
    port          integer,
    branch        varchar(255),
    replicas      integer DEFAULT 1,
    cpu_limit     varchar(20),
    memory_limit  varchar(20),
    auto_deploy   boolean DEFAULT TRUE,
    created_at    timestamptz DEFAULT NOW(),
    updated_at    timestamptz DEFAULT NOW(),
    UNIQUE (project_id, name)
);
CREATE INDEX idx_environments_project_id ON environments (project_id);
CREATE INDEX idx_environments_domain ON environments (domain);

CREATE TABLE env_variables (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    environment_id  uuid REFERENCES environments (id) ON DELETE CASCADE,
    key             varchar(255) NOT NULL,
    value           text NOT NULL,
    is_secret       boolean DEFAULT FALSE,
    created_at      timestamptz DEFAULT NOW(),
    updated_at      timestamptz DEFAULT NOW(),
    UNIQUE (environment_id, key)
);
CREATE INDEX idx_env_variables_environment_id ON env_variables (environment_id);

CREATE TABLE deployments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    environment_id  uuid REFERENCES environments (id) ON DELETE CASCADE,
    status          varchar(50) NOT NULL DEFAULT 'pending' CHECK (status IN (
                        'pending', 'cloning', 'building', 'deploying', 'running',
                        'failed', 'rolled_back', 'cancelled')),
    trigger_type    varchar(50) NOT NULL DEFAULT 'manual' CHECK (trigger_type IN ('manual', 'webhook', 'rollback')),
    commit_sha      varchar(40),
    commit_message  text,
    commit_author   varchar(255),
    branch          varchar(255),
    image_tag       varchar(255),
    error_message   text,
    started_at      timestamptz,
    finished_at     timestamptz,
    created_at      timestamptz DEFAULT NOW()
);
CREATE INDEX idx_deployments_environment_id ON deployments (environment_id);
CREATE INDEX idx_deployments_status ON deployments (status);
CREATE INDEX idx_deployments_created_at ON deployments (created_at DESC);

CREATE TABLE deployment_logs (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    deployment_id  uuid REFERENCES deployments (id) ON DELETE CASCADE,
    timestamp      timestamptz DEFAULT NOW(),
    level          varchar(20) DEFAULT 'info' CHECK (level IN ('debug', 'info', 'warn', 'error')),
    message        text NOT NULL,
    source         varchar(50)
);
CREATE INDEX idx_deployment_logs_deployment_id ON deployment_logs (deployment_id);
CREATE INDEX idx_deployment_logs_timestamp ON deployment_logs (deployment_id, timestamp);

CREATE TABLE service_instances (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid REFERENCES users (id) ON DELETE CASCADE,
    template_name    varchar(100) NOT NULL,
    name             varchar(255) NOT NULL,
    version          varchar(50),
    config           jsonb DEFAULT '{}',
    domain           varchar(255),
    status           varchar(50) NOT NULL DEFAULT 'pending' CHECK (status IN (
                         'pending', 'starting', 'running', 'stopped', 'failed')),
    connection_info  jsonb DEFAULT '{}',
    created_at       timestamptz DEFAULT NOW(),
    updated_at       timestamptz DEFAULT NOW()
);
CREATE INDEX idx_service_instances_user_id ON service_instances (user_id);
CREATE INDEX idx_service_instances_template_name ON service_instances (template_name);

CREATE TABLE containers (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    deployment_id        uuid REFERENCES deployments (id) ON DELETE SET NULL,
    service_instance_id  uuid REFERENCES service_instances (id) ON DELETE SET NULL,
    docker_id            varchar(64) NOT NULL,
    name                 varchar(255) NOT NULL,
    image                varchar(255) NOT NULL,
    status               varchar(50) NOT NULL,
    ports                jsonb DEFAULT '[]',
    labels               jsonb DEFAULT '{}',
    created_at           timestamptz DEFAULT NOW(),
    updated_at           timestamptz DEFAULT NOW()
);
CREATE INDEX idx_containers_deployment_id ON containers (deployment_id);
CREATE INDEX idx_containers_service_instance_id ON containers (service_instance_id);
CREATE INDEX idx_containers_docker_id ON containers (docker_id);

CREATE TABLE container_metrics (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    container_id    uuid REFERENCES containers (id) ON DELETE CASCADE,
    timestamp       timestamptz DEFAULT NOW(),
    cpu_percent     decimal(5, 2),
    memory_usage    bigint,
    memory_limit    bigint,
    memory_percent  decimal(5, 2),
    network_rx      bigint,
    network_tx      bigint,
    block_read      bigint,
    block_write     bigint
);
CREATE INDEX idx_container_metrics_container_timestamp ON container_metrics (container_id, timestamp DESC);

CREATE TABLE audit_logs (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid REFERENCES users (id) ON DELETE SET NULL,
    action         varchar(100) NOT NULL,
    resource_type  varchar(50) NOT NULL,
    resource_id    uuid,
    details        jsonb DEFAULT '{}',
    ip_address     inet,
    user_agent     text,
    created_at     timestamptz DEFAULT NOW()
);
CREATE INDEX idx_audit_logs_user_id ON audit_logs (user_id);
CREATE INDEX idx_audit_logs_resource ON audit_logs (resource_type, resource_id);
CREATE INDEX idx_audit_logs_created_at ON audit_logs (created_at DESC);

-- GoForge's own cleanup (migration 010): destroys history; forge_assets never calls it.
CREATE OR REPLACE FUNCTION cleanup_old_data() RETURNS void AS $$
BEGIN
    DELETE FROM container_metrics WHERE timestamp < NOW() - INTERVAL '7 days';
    DELETE FROM deployment_logs WHERE timestamp < NOW() - INTERVAL '30 days';
END;
$$ LANGUAGE plpgsql;

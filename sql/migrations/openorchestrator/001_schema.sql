-- OpenOrchestrator RPA, as its "Database Schemas" page documents it. Its SQLAlchemy ORM names the
-- tables in capitalised words ("Triggers", "Logs", ...), stores Enum columns as PostgreSQL enum types
-- of the member names, and "datetime" columns as timestamps without time zone (its clock is UTC).

CREATE TYPE "TriggerStatus" AS ENUM ('IDLE', 'RUNNING', 'FAILED', 'DONE', 'PAUSED');
CREATE TYPE "TriggerType" AS ENUM ('SINGLE', 'SCHEDULED', 'QUEUE');
CREATE TYPE "LogLevel" AS ENUM ('TRACE', 'INFO', 'ERROR');
CREATE TYPE "QueueStatus" AS ENUM ('NEW', 'IN_PROGRESS', 'DONE', 'FAILED', 'ABANDONED');

CREATE TABLE "Triggers" (
    id              uuid PRIMARY KEY,
    trigger_name    varchar(100) NOT NULL,
    process_name    varchar(100) NOT NULL,
    last_run        timestamp,
    process_path    varchar(250) NOT NULL,
    process_args    varchar(1000),
    process_status  "TriggerStatus" NOT NULL,
    is_git_repo     boolean NOT NULL,
    is_blocking     boolean NOT NULL,
    type            "TriggerType" NOT NULL
);

CREATE TABLE "Scheduled_Triggers" (
    id         uuid PRIMARY KEY REFERENCES "Triggers" (id) ON DELETE CASCADE,
    cron_expr  varchar(200) NOT NULL,
    next_run   timestamp NOT NULL
);

CREATE TABLE "Queue_Triggers" (
    id              uuid PRIMARY KEY REFERENCES "Triggers" (id) ON DELETE CASCADE,
    queue_name      varchar(100) NOT NULL,
    min_batch_size  integer NOT NULL
);

CREATE TABLE "Single_Triggers" (
    id        uuid PRIMARY KEY REFERENCES "Triggers" (id) ON DELETE CASCADE,
    next_run  timestamp NOT NULL
);

CREATE TABLE "Logs" (
    id            uuid PRIMARY KEY,
    log_time      timestamp NOT NULL,
    log_level     "LogLevel" NOT NULL,
    process_name  varchar(100) NOT NULL,
    log_message   varchar(8000) NOT NULL
);
CREATE INDEX "ix_Logs_log_time" ON "Logs" (log_time);

CREATE TABLE "Constants" (
    name        varchar(100) PRIMARY KEY,
    value       varchar(1000) NOT NULL,
    changed_at  timestamp NOT NULL
);

CREATE TABLE "Credentials" (
    name        varchar(100) PRIMARY KEY,
    username    varchar(250) NOT NULL,
    password    varchar(1000) NOT NULL,
    changed_at  timestamp NOT NULL
);

CREATE TABLE "Queues" (
    id            uuid PRIMARY KEY,
    queue_name    varchar(100) NOT NULL,
    status        "QueueStatus" NOT NULL,
    data          varchar(2000),
    reference     varchar(100),
    created_date  timestamp NOT NULL,
    start_date    timestamp,
    end_date      timestamp,
    message       varchar(1000),
    created_by    varchar(100)
);
CREATE INDEX "ix_Queues_queue_name_created" ON "Queues" (queue_name, created_date);
CREATE INDEX "ix_Queues_created_date" ON "Queues" (created_date);

-- Forge execution history: job events (partitioned), activity stream, audit events.
--
-- main_jobevent uses LIST partitioning by job_id, as the seed describes. The seed gives each job its
-- own partition; this stand-in groups the jobs launched on one UTC day into one list partition
-- (main_jobevent_pYYYYMMDD, created by the launcher before the day's events arrive) so that a demo of
-- months holds tens of partitions rather than thousands. Events of jobs without a partition land in
-- main_jobevent_default. job_created repeats the job's created time on each event (as in AWX), which
-- is what cleanup and retention key on.

CREATE TABLE main_jobevent (
    id            bigserial,
    created       timestamptz NOT NULL,
    modified      timestamptz NOT NULL,
    job_created   timestamptz NOT NULL,
    job_id        integer NOT NULL,
    host_id       integer,
    host_name     varchar(1024) NOT NULL DEFAULT '',
    event         varchar(100) NOT NULL,
    event_data    text NOT NULL DEFAULT '{}',
    failed        boolean NOT NULL DEFAULT false,
    changed       boolean NOT NULL DEFAULT false,
    uuid          varchar(1024) NOT NULL DEFAULT '',
    parent_uuid   varchar(1024) NOT NULL DEFAULT '',
    playbook      varchar(1024) NOT NULL DEFAULT '',
    play          varchar(1024) NOT NULL DEFAULT '',
    role          varchar(1024) NOT NULL DEFAULT '',
    task          varchar(1024) NOT NULL DEFAULT '',
    counter       integer NOT NULL DEFAULT 0 CHECK (counter >= 0),
    stdout        text NOT NULL DEFAULT '',
    verbosity     integer NOT NULL DEFAULT 0 CHECK (verbosity >= 0),
    start_line    integer NOT NULL DEFAULT 0 CHECK (start_line >= 0),
    end_line      integer NOT NULL DEFAULT 0 CHECK (end_line >= 0),
    PRIMARY KEY (id, job_id)
) PARTITION BY LIST (job_id);
CREATE TABLE main_jobevent_default PARTITION OF main_jobevent DEFAULT;
CREATE INDEX main_jobevent_job_id_counter_idx ON main_jobevent (job_id, counter);
CREATE INDEX main_jobevent_job_created_idx ON main_jobevent (job_created);

CREATE TABLE main_activitystream (
    id                        serial PRIMARY KEY,
    actor_id                  integer REFERENCES auth_user (id) ON DELETE SET NULL,
    operation                 varchar(13) NOT NULL,
    timestamp                 timestamptz NOT NULL,
    changes                   text NOT NULL DEFAULT '',
    deleted_actor             jsonb,
    object_relationship_type  text NOT NULL DEFAULT '',
    object1                   text NOT NULL,
    object2                   text NOT NULL DEFAULT '',
    action_node               varchar(512) NOT NULL DEFAULT '',
    setting                   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX main_activitystream_timestamp_idx ON main_activitystream (timestamp);
CREATE INDEX main_activitystream_actor_id_idx ON main_activitystream (actor_id);

CREATE TABLE main_auditevent (
    id               bigserial PRIMARY KEY,
    created          timestamptz NOT NULL,
    actor_id         integer REFERENCES auth_user (id) ON DELETE SET NULL,
    actor_username   varchar(150) NOT NULL DEFAULT '',
    organization_id  integer REFERENCES main_organization (id) ON DELETE SET NULL,
    action           varchar(64) NOT NULL,
    resource_type    varchar(64) NOT NULL,
    resource_id      varchar(64) NOT NULL DEFAULT '',
    outcome          varchar(16) NOT NULL DEFAULT 'success',
    ip_address       inet,
    details          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX main_auditevent_created_idx ON main_auditevent (created);

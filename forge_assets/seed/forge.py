"""Forge automation controller: tenants near their quotas, templates with distinct duration profiles,
hosts that keep failing, jobs still running at the anchor, and bursts of job events."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from forge_assets.pgcopy import copy_rows
from forge_assets.seed.common import (
    US_PER_DAY,
    US_PER_SECOND,
    SeedPlan,
    concat,
    daily_batches,
    diurnal_offsets_us,
    pick,
    reset_sequences,
    timestamps,
    uuid_strings,
)

_S = US_PER_SECOND
_DAY = US_PER_DAY


@dataclass(frozen=True)
class TemplateProfile:
    """How runs of one kind of job template behave."""

    name: str
    median_seconds: float
    sigma: float
    fail_rate: float
    tasks: int
    hosts: int
    weight: float


PROFILES = [
    TemplateProfile("Deploy web tier", 240, 0.35, 0.06, 14, 20, 3.0),
    TemplateProfile("Patch Linux fleet", 1500, 0.5, 0.12, 24, 60, 1.0),
    TemplateProfile("Rotate TLS certificates", 60, 0.25, 0.02, 6, 12, 1.5),
    TemplateProfile("Database backup", 900, 0.3, 0.04, 5, 2, 2.0),
    TemplateProfile("Compliance scan", 600, 0.6, 0.15, 18, 40, 1.0),
    TemplateProfile("Restart services", 30, 0.4, 0.03, 5, 10, 3.0),
    TemplateProfile("Provision VM", 420, 0.45, 0.08, 18, 1, 1.5),
    TemplateProfile("Collect facts", 90, 0.3, 0.01, 4, 50, 2.0),
]
TASKS = np.array(
    [
        "Gathering Facts", "Install packages", "Template config", "Restart service", "Wait for port",
        "Check health endpoint", "Copy artifacts", "Run migrations", "Update cache", "Ensure user exists",
        "Set sysctl", "Open firewall port", "Pull container image", "Render systemd unit", "Verify checksum",
        "Rotate logs", "Flush handlers", "Mount volume", "Sync time", "Report status",
    ],
    dtype=object,
)
ORGANIZATIONS = [
    # name, daily launch limit and concurrent job limit as multiples of the tenant's own average traffic
    # (below 1: regularly over quota; about 1: near it), host limit. None: no tenant limits.
    ("Default", None, None, None),
    ("Acme Retail", 1.1, 0.5, 120),
    ("Globex Payments", 2.0, 1.0, 200),
    ("Initech Labs", 0.8, 0.3, 40),
    ("Umbrella Health", 1.3, 0.6, 150),
    ("Hooli Cloud", 3.0, 1.5, 400),
]
_LONGEST_PROFILE = 1  # "Patch Linux fleet": runs of about 25 minutes


def seed(conn: psycopg.Connection, plan: SeedPlan) -> None:
    """Generate and load every Forge table."""
    rng = plan.rng("forge")
    first_us = plan.day_starts_us()[0]
    _organizations(conn, first_us)
    users = _users(conn, rng, first_us)
    inventories, hosts = _inventories_and_hosts(conn, rng, plan, first_us)
    templates = _templates(conn, rng, inventories, first_us)
    launches, limits = _launches(rng, plan, templates)
    _set_tenant_limits(conn, limits)
    runs = _runs(rng, plan, launches, templates, hosts)
    _load_jobs(conn, rng, runs, templates, users)
    _load_quota(conn, rng, plan, launches, runs, limits, templates, hosts, inventories)
    _load_host_summaries(conn, rng, runs, hosts, templates)
    _load_job_events(conn, rng, plan, runs, hosts, templates)
    _activity(conn, rng, plan, users)
    _eda(conn, rng, plan)
    _drift(conn, rng, runs)
    _challenges(conn, rng, plan, users)
    reset_sequences(conn)


def _organizations(conn, first_us) -> None:
    n = len(ORGANIZATIONS)
    created = timestamps(np.full(n, first_us - 400 * 86_400 * _S))
    tenant = np.array([row[1] is not None for row in ORGANIZATIONS])
    copy_rows(conn, "main_organization", [{
        "id": np.arange(1, n + 1),
        "created": created,
        "modified": created,
        "name": [row[0] for row in ORGANIZATIONS],
        "is_tenant_root": tenant,
        "tenant_max_hosts": pa.array([row[3] or 0 for row in ORGANIZATIONS], pa.int32(), mask=~tenant),
        "tenant_max_storage_mb": pa.array(np.full(n, 10_240), pa.int32(), mask=~tenant),
        "tenant_contact_email": [f"ops@{row[0].split()[0].lower()}.example" for row in ORGANIZATIONS],
    }])


def _set_tenant_limits(conn, limits) -> None:
    for org_id, (daily, concurrent) in enumerate(zip(limits["daily"], limits["concurrent"], strict=True), start=1):
        if daily:
            conn.execute(
                "UPDATE main_organization SET tenant_max_daily_launches = %s, tenant_max_concurrent_jobs = %s "
                "WHERE id = %s", (int(daily), int(concurrent), org_id))


def _users(conn, rng, first_us) -> np.ndarray:
    n = 40
    ids = np.arange(1, n + 1)
    salts = uuid_strings(rng, n)
    copy_rows(conn, "auth_user", [{
        "id": ids,
        "password": concat("pbkdf2_sha256$600000$", salts, "$", uuid_strings(rng, n)),
        "username": [f"user{i:03d}" for i in ids],
        "email": [f"user{i:03d}@example.com" for i in ids],
        "is_superuser": ids <= 2,
        "date_joined": timestamps(np.full(n, first_us - 300 * 86_400 * _S)),
    }])
    return ids


def _inventories_and_hosts(conn, rng, plan, first_us):
    inv_org = np.repeat(np.arange(1, len(ORGANIZATIONS) + 1), 2)
    inv_ids = np.arange(1, len(inv_org) + 1)
    created = timestamps(np.full(len(inv_ids), first_us - 200 * 86_400 * _S))
    copy_rows(conn, "main_inventory", [{
        "id": inv_ids, "created": created, "modified": created,
        "name": [f"{'prod' if i % 2 else 'staging'}-{o}" for i, o in zip(inv_ids, inv_org, strict=True)],
        "organization_id": inv_org,
    }])
    per_inventory = plan.count(50)
    host_inv = np.repeat(inv_ids, per_inventory)
    n = len(host_inv)
    host_ids = np.arange(1, n + 1)
    names = np.array([f"node-{i:05d}.example.net" for i in host_ids], dtype=object)
    flaky = rng.random(n) < 0.012  # a few hosts that keep failing
    created = timestamps(np.full(n, first_us - 150 * 86_400 * _S))
    copy_rows(conn, "main_host", [{
        "id": host_ids, "created": created, "modified": created, "name": names, "inventory_id": host_inv,
    }])
    conn.execute(
        "UPDATE main_inventory i SET total_hosts = c.n FROM "
        "(SELECT inventory_id, count(*) AS n FROM main_host GROUP BY 1) c WHERE c.inventory_id = i.id"
    )
    inventories = {"ids": inv_ids, "org": inv_org}
    hosts = {"inventory": host_inv, "names": names, "flaky": flaky}
    return inventories, hosts


def _templates(conn, rng, inventories, first_us):
    rows = []
    for inv_id, org in zip(inventories["ids"], inventories["org"], strict=True):
        if inv_id % 2 == 0:
            continue
        for k in range(4):
            profile_index = (org * 3 + k) % len(PROFILES)
            rows.append((len(rows) + 1, org, inv_id, profile_index))
    ids, org, inv, prof = (np.array(c) for c in zip(*rows, strict=True))
    created = timestamps(np.full(len(ids), first_us - 180 * 86_400 * _S))
    copy_rows(conn, "main_jobtemplate", [{
        "id": ids, "created": created, "modified": created,
        "name": [PROFILES[p].name for p in prof],
        "organization_id": org, "inventory_id": inv,
        "playbook": [PROFILES[p].name.lower().replace(" ", "_") + ".yml" for p in prof],
    }])
    return {"ids": ids, "org": org, "inventory": inv, "profile": prof}


def _launches(rng, plan: SeedPlan, templates) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Launch attempts per day, plus a few in the last minutes that are still running at the anchor.

    Tenant limits are set relative to each tenant's own average traffic, so that some tenants run near
    and some over their daily launch quota at any scale; launches past the limit are blocked.
    """
    weights = np.array([PROFILES[p].weight for p in templates["profile"]])
    created, template_index = [], []
    for day_start in plan.day_starts_us():
        weekend = ((day_start // _DAY) + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        n = rng.poisson(plan.count(45) * (0.6 if weekend else 1.0))
        created.append(day_start + np.sort(diurnal_offsets_us(rng, n)))
        template_index.append(rng.choice(len(weights), size=n, p=weights / weights.sum()))
    long_running = np.flatnonzero(templates["profile"] == _LONGEST_PROFILE)
    in_flight = max(2, plan.count(3))
    created.append(plan.anchor_us - np.sort(rng.integers(60, 900, in_flight))[::-1] * _S)
    template_index.append(rng.choice(long_running, size=in_flight))
    created = np.concatenate(created)
    template_index = np.concatenate(template_index)
    order = np.argsort(created, kind="stable")
    created, template_index = created[order], template_index[order]
    keep = (created < plan.anchor_us) & (created >= plan.day_starts_us()[0])
    created, template_index = created[keep], template_index[keep]
    org = templates["org"][template_index]

    per_day = np.bincount(org, minlength=len(ORGANIZATIONS) + 1)[1:] / plan.days
    factors = np.array([[row[1] or 0, row[2] or 0] for row in ORGANIZATIONS], dtype=float)
    limits = {
        "daily": np.where(factors[:, 0] > 0, np.maximum(1, np.round(per_day * factors[:, 0])), 0).astype(int),
        "concurrent": np.where(factors[:, 1] > 0, np.maximum(2, np.round(per_day * factors[:, 1] / 4)), 0).astype(int),
    }

    # Rank of each launch within its organisation and day, against the tenant's daily launch limit.
    day = created // _DAY
    order = np.lexsort((created, org, day))
    new_group = np.r_[True, (day[order][1:] != day[order][:-1]) | (org[order][1:] != org[order][:-1])]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(order)), 0))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - group_start + 1
    limit = limits["daily"][org - 1]
    blocked = (limit > 0) & (rank > limit) & (created < plan.anchor_us - 900 * _S)
    return {
        "created": created, "template_index": template_index, "org": org, "rank": rank,
        "limit": limit, "blocked": blocked,
    }, limits


def _runs(rng, plan: SeedPlan, launches, templates, hosts) -> dict[str, np.ndarray]:
    """Launched jobs: timing, the hosts each ran on, per-host outcomes and the job status they imply."""
    launched = ~launches["blocked"]
    created = launches["created"][launched]
    t_index = launches["template_index"][launched]
    n = len(created)
    profile = templates["profile"][t_index]
    median = np.array([p.median_seconds for p in PROFILES])[profile]
    sigma = np.array([p.sigma for p in PROFILES])[profile]
    fail_rate = np.array([p.fail_rate for p in PROFILES])[profile]
    wanted_hosts = np.array([p.hosts for p in PROFILES])[profile]
    started = created + (rng.exponential(8.0, n) * _S).astype(np.int64)
    finished = started + (rng.lognormal(np.log(median), sigma) * _S).astype(np.int64)
    just_launched = created >= plan.anchor_us - 900 * _S  # the jobs running right now
    finished = np.where(just_launched, np.maximum(finished, plan.anchor_us + 60 * _S), finished)

    hosts_of_inventory = {inv: np.flatnonzero(hosts["inventory"] == inv) + 1 for inv in np.unique(hosts["inventory"])}
    host_lists = []
    for inv, wanted in zip(templates["inventory"][t_index], wanted_hosts, strict=True):
        pool = hosts_of_inventory[inv]
        k = int(min(len(pool), max(1, rng.poisson(wanted))))
        host_lists.append(np.sort(rng.choice(pool, size=k, replace=False)))
    host_count = np.array([len(h) for h in host_lists])
    host_offset = np.r_[0, np.cumsum(host_count)[:-1]]
    host_flat = np.concatenate(host_lists)
    job_of_host = np.repeat(np.arange(n), host_count)
    flaky = hosts["flaky"][host_flat - 1]
    # A healthy host fails so rarely that a job fails at its template's rate; flaky hosts fail half the time.
    p_fail = np.where(flaky, 0.5, 1 - (1 - fail_rate[job_of_host]) ** (1 / host_count[job_of_host]))
    host_failed = rng.random(len(host_flat)) < p_fail
    host_dark = rng.random(len(host_flat)) < np.where(flaky, 0.08, 0.0005)
    job_failed = np.add.reduceat((host_failed | host_dark).astype(int), host_offset) > 0

    status = np.where(job_failed, "failed", "successful").astype(object)
    odd = rng.random(n)
    status[odd < 0.01] = "error"
    status[(odd >= 0.01) & (odd < 0.02)] = "canceled"
    pending = started > plan.anchor_us
    running = ~pending & (finished > plan.anchor_us)
    status[running] = "running"
    status[pending] = pick(rng, ["pending", "waiting"], int(pending.sum()))
    return {
        "ids": np.arange(1, n + 1), "created": created, "template_index": t_index, "profile": profile,
        "started": np.where(pending, -1, started), "finished": np.where(pending | running, -1, finished),
        "status": status, "done": ~(pending | running), "running": running,
        "host_flat": host_flat, "host_count": host_count, "host_offset": host_offset,
        "job_of_host": job_of_host, "host_failed": host_failed, "host_dark": host_dark,
    }


def _load_jobs(conn, rng, runs, templates, users) -> None:
    t = runs["template_index"]
    done = runs["done"]
    elapsed = np.where(done, (runs["finished"] - runs["started"]) / _S, 0.0)
    profile_names = np.array([p.name for p in PROFILES], dtype=object)[runs["profile"]]
    copy_rows(conn, "main_job", [{
        "id": runs["ids"],
        "created": timestamps(runs["created"]),
        "modified": timestamps(np.where(done, runs["finished"], runs["created"])),
        "name": profile_names,
        "launch_type": pick(rng, ["manual", "scheduled", "workflow", "webhook", "relaunch"], len(t),
                            [3, 5, 2, 1, 0.5]),
        "status": runs["status"],
        "failed": np.isin(runs["status"], ["failed", "error"]),
        "started": timestamps(runs["started"]),
        "finished": timestamps(runs["finished"]),
        "elapsed": np.round(elapsed, 3),
        "execution_node": pick(rng, ["exec-node-1", "exec-node-2", "exec-node-3"], len(t)),
        "job_template_id": templates["ids"][t],
        "inventory_id": templates["inventory"][t],
        "organization_id": templates["org"][t],
        "created_by_id": rng.choice(users, size=len(t)),
        "playbook": pa.array([p.lower().replace(" ", "_") + ".yml" for p in profile_names]),
    }])


def _load_quota(conn, rng, plan, launches, runs, limits, templates, hosts, inventories) -> None:
    """One quota decision per launch of a tenant with limits, and the tenants' current usage rows."""
    limited = launches["limit"] > 0
    org = launches["org"][limited]
    blocked = launches["blocked"][limited]
    n = len(org)
    concurrent_limit = limits["concurrent"][org - 1]
    kind = np.where(blocked, "daily_launches", pick(rng, ["daily_launches", "concurrent_jobs"], n, [3, 1]))
    current = np.where(kind == "daily_launches", np.minimum(launches["rank"][limited] - 1, launches["limit"][limited]),
                       rng.integers(0, np.maximum(concurrent_limit, 1)))
    limit = np.where(kind == "daily_launches", launches["limit"][limited], concurrent_limit)
    created = timestamps(launches["created"][limited])
    copy_rows(conn, "main_tenantquotaevent", [{
        "organization_id": org,
        "organization_name": np.array([r[0] for r in ORGANIZATIONS], dtype=object)[org - 1],
        "quota_kind": kind,
        "decision": np.where(blocked, "blocked", "allowed"),
        "current_value": current,
        "limit_value": limit,
        "unified_job_template_id": templates["ids"][launches["template_index"][limited]],
        "message": np.where(blocked, "daily launch limit reached", ""),
        "created": created,
        "modified": created,
    }])
    tenant_orgs = np.array([i + 1 for i, r in enumerate(ORGANIZATIONS) if r[1] is not None])
    today = plan.anchor_us - plan.anchor_us % _DAY
    job_org = templates["org"][runs["template_index"]]
    host_org = inventories["org"][hosts["inventory"] - 1]
    now = timestamps(np.full(len(tenant_orgs), plan.anchor_us))
    copy_rows(conn, "main_tenantusage", [{
        "organization_id": tenant_orgs,
        "concurrent_jobs_count": [int(((job_org == o) & runs["running"]).sum()) for o in tenant_orgs],
        "launches_today_count": [int(((job_org == o) & (runs["created"] >= today)).sum()) for o in tenant_orgs],
        "launches_today_window_start": timestamps(np.full(len(tenant_orgs), today)),
        "hosts_count": [int((host_org == o).sum()) for o in tenant_orgs],
        "storage_mb_used": rng.integers(500, 9_000, len(tenant_orgs)),
        "last_recalculated_at": now, "created": now, "modified": now,
    }])


def _load_host_summaries(conn, rng, runs, hosts, templates) -> None:
    """Per finished job and host: task counters consistent with the host's outcome."""
    keep = runs["done"][runs["job_of_host"]]
    job = runs["job_of_host"][keep]
    tasks = np.array([p.tasks for p in PROFILES])[runs["profile"][job]]
    failed, dark = runs["host_failed"][keep], runs["host_dark"][keep]
    skipped = rng.binomial(tasks, 0.1)
    ok = np.where(dark, 0, tasks - skipped - failed)
    host_ids = runs["host_flat"][keep]
    finished = timestamps(runs["finished"][job])
    copy_rows(conn, "main_jobhostsummary", [{
        "created": finished, "modified": finished,
        "job_id": runs["ids"][job], "host_id": host_ids, "host_name": hosts["names"][host_ids - 1],
        "changed": rng.binomial(np.maximum(ok, 0), 0.3), "dark": dark.astype(int), "failures": failed.astype(int),
        "ok": np.maximum(ok, 0), "processed": np.ones(len(job), dtype=int), "skipped": skipped,
        "failed": failed | dark,
    }])
    conn.execute(
        "UPDATE main_host h SET has_active_failures = s.failed, last_job_id = s.job_id FROM ("
        " SELECT DISTINCT ON (host_id) host_id, job_id, failed FROM main_jobhostsummary"
        " ORDER BY host_id, created DESC) s WHERE s.host_id = h.id"
    )
    conn.execute(
        "UPDATE main_inventory i SET hosts_with_active_failures = c.n FROM (SELECT inventory_id, "
        "count(*) FILTER (WHERE has_active_failures) AS n FROM main_host GROUP BY 1) c WHERE c.inventory_id = i.id"
    )


def _load_job_events(conn, rng, plan: SeedPlan, runs, hosts, templates) -> None:
    """Job events of started jobs, one list partition per launch day.

    Each day is loaded into a plain table that is then attached as the day's partition, so that its
    indexes are built once over the loaded rows instead of being maintained row by row.
    """
    started = runs["started"] >= 0
    day = runs["created"] // _DAY
    next_id = 1
    for d in np.unique(day[started]):
        jobs = np.flatnonzero(started & (day == d))
        table = f"main_jobevent_p{np.datetime64(int(d), 'D').astype(str).replace('-', '')}"
        name = sql.Identifier(table)
        conn.execute(sql.SQL("CREATE TABLE {} (LIKE main_jobevent INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
                     .format(name))
        batch = _events_of(rng, plan, runs, hosts, templates, jobs, next_id)
        next_id += len(batch["id"])
        copy_rows(conn, table, [batch])
        conn.execute(sql.SQL("ALTER TABLE main_jobevent ATTACH PARTITION {} FOR VALUES IN ({})").format(
            name, sql.SQL(", ").join(map(sql.Literal, runs["ids"][jobs].tolist()))))


def _events_of(rng, plan, runs, hosts, templates, jobs, first_id) -> dict:
    """The events of `jobs`: start, play, a task-start and one runner event per host and task, stats."""
    tasks = np.array([p.tasks for p in PROFILES])[runs["profile"][jobs]]
    h = runs["host_count"][jobs]
    per_job = 3 + tasks * (1 + h)
    total = int(per_job.sum())
    job = np.repeat(jobs, per_job)
    local = np.arange(total) - np.repeat(np.cumsum(per_job) - per_job, per_job)
    n_events, n_tasks, n_hosts = np.repeat(per_job, per_job), np.repeat(tasks, per_job), np.repeat(h, per_job)
    middle = local - 2
    in_tasks = (middle >= 0) & (middle < n_tasks * (1 + n_hosts))
    task_no = np.where(in_tasks, middle // (1 + n_hosts), 0)
    slot = np.where(in_tasks, middle % (1 + n_hosts), 0)
    is_runner = in_tasks & (slot > 0)
    flat = runs["host_offset"][job] + np.maximum(slot - 1, 0)
    host_id = np.where(is_runner, runs["host_flat"][flat], 0)
    failed_host = is_runner & runs["host_failed"][flat] & (task_no == n_tasks - 1)
    dark_host = is_runner & runs["host_dark"][flat]
    skipped = is_runner & ~failed_host & ~dark_host & (rng.random(total) < 0.1)
    changed = is_runner & ~failed_host & ~dark_host & ~skipped & (rng.random(total) < 0.3)

    event = np.full(total, "runner_on_ok", dtype=object)
    event[skipped] = "runner_on_skipped"
    event[failed_host] = "runner_on_failed"
    event[dark_host] = "runner_on_unreachable"
    event[in_tasks & (slot == 0)] = "playbook_on_task_start"
    event[local == 0] = "playbook_on_start"
    event[local == 1] = "playbook_on_play_start"
    event[local == n_events - 1] = "playbook_on_stats"

    started, finished = runs["started"][job], runs["finished"][job]
    span = np.where(finished > 0, finished - started, plan.anchor_us - started)
    created = started + (span * (local / n_events)).astype(np.int64) + rng.integers(0, _S, total)
    visible = created <= plan.anchor_us  # running jobs have logged only what happened before the anchor
    task_name = TASKS[(runs["template_index"][job] * 7 + task_no) % len(TASKS)]
    host_name = np.where(is_runner, hosts["names"][np.maximum(host_id, 1) - 1], "")
    playbook = np.array([p.name.lower().replace(" ", "_") + ".yml" for p in PROFILES], dtype=object)[
        runs["profile"][job]]
    uuids = uuid_strings(rng, total)
    result = np.where(failed_host, "FAILED! => non-zero return code", np.where(changed, "changed", "ok"))
    stdout = pc.if_else(
        pa.array(event == "playbook_on_task_start"),
        concat("TASK [", pa.array(task_name), "] " + "*" * 40),
        pc.if_else(pa.array(is_runner), concat(pa.array(result), ": [", pa.array(host_name), "]"), ""),
    )
    event_data = concat(
        '{"playbook": "', pa.array(playbook), '", "play": "all", "task": "', pa.array(task_name),
        '", "host": "', pa.array(host_name), '", "res": {"changed": ', pa.array(changed),
        ', "rc": ', pa.array(np.where(failed_host, 2, 0)), ', "msg": "", "_ansible_no_log": false}, '
        '"task_action": "ansible.builtin.command", "resolved_action": "ansible.builtin.command", "duration": ',
        pa.array(np.round(rng.exponential(2.0, total), 3)), ', "uuid": "', uuids, '"}',
    )
    columns = {
        "id": first_id + np.arange(total),
        "created": timestamps(created), "modified": timestamps(created),
        "job_created": timestamps(runs["created"][job]),
        "job_id": runs["ids"][job],
        "host_id": pa.array(host_id, mask=host_id == 0),
        "host_name": pa.array(host_name), "event": pa.array(event), "event_data": event_data,
        "failed": failed_host | dark_host, "changed": changed, "uuid": uuids,
        "playbook": pa.array(playbook), "play": np.full(total, "all"),
        "task": pa.array(np.where(in_tasks, task_name, "")),
        "counter": local + 1, "stdout": stdout,
        "start_line": local, "end_line": local + 1,
    }
    mask = pa.array(visible)
    return {name: pa.array(col).filter(mask) for name, col in columns.items()}


def _activity(conn, rng, plan: SeedPlan, users) -> None:
    """Activity stream and security audit events, with diurnal rhythm."""
    copy_rows(conn, "main_activitystream", daily_batches(rng, plan, 150, peak_hour=11, build=lambda at: {
        "actor_id": rng.choice(users, len(at)),
        "operation": pick(rng, ["create", "update", "delete", "associate", "disassociate"], len(at), [3, 8, 1, 2, 1]),
        "timestamp": timestamps(at),
        "changes": concat('{"name": ["old", "new"], "id": ', pa.array(rng.integers(1, 5000, len(at))), "}"),
        "object1": pick(rng, ["job_template", "host", "inventory", "credential", "organization", "user"], len(at)),
    }))
    copy_rows(conn, "main_auditevent", daily_batches(rng, plan, 80, peak_hour=11, build=lambda at: {
        "created": timestamps(at),
        "actor_id": rng.choice(users, len(at)),
        "actor_username": concat("user", pa.array(rng.integers(1, 41, len(at)))),
        "organization_id": rng.integers(1, len(ORGANIZATIONS) + 1, len(at)),
        "action": pick(rng, ["login", "logout", "login_failed", "token_create", "job_launch", "role_grant"], len(at),
                       [10, 8, 1, 1, 6, 1]),
        "resource_type": pick(rng, ["session", "job", "role", "token"], len(at)),
        "outcome": pick(rng, ["success", "failure"], len(at), [19, 1]),
        "ip_address": concat("10.", pa.array(rng.integers(0, 255, len(at))), ".",
                             pa.array(rng.integers(0, 255, len(at))), ".7"),
    }))


def _eda(conn, rng, plan: SeedPlan) -> None:
    """Webhook rules and their event log; some days bring bursts of webhook traffic."""
    n_rules = 8
    created = timestamps(np.full(n_rules, plan.day_starts_us()[0]))
    copy_rows(conn, "main_eventrule", [{
        "id": np.arange(1, n_rules + 1), "created": created, "modified": created,
        "name": [f"rule-{i}" for i in range(1, n_rules + 1)],
        "organization_id": rng.integers(1, len(ORGANIZATIONS) + 1, n_rules),
        "webhook_secret": uuid_strings(rng, n_rules),
    }])

    def batches():
        for start in plan.day_starts_us():
            burst = 6.0 if rng.random() < 0.1 else 1.0
            n = rng.poisson(plan.count(200) * burst)
            at = start + np.sort(diurnal_offsets_us(rng, n))
            at = at[at < plan.anchor_us]
            status = pick(rng, ["matched", "unmatched", "error"], len(at), [6, 3, 0.3])
            yield {
                "created": timestamps(at), "modified": timestamps(at),
                "organization_id": rng.integers(1, len(ORGANIZATIONS) + 1, len(at)),
                "event_rule_id": pa.array(rng.integers(1, n_rules + 1, len(at)), mask=status == "unmatched"),
                "source_ip": concat("192.0.2.", pa.array(rng.integers(1, 255, len(at)))),
                "payload": concat('{"alert": "disk_full", "severity": ', pa.array(rng.integers(1, 5, len(at))), "}"),
                "status": status,
                "error": np.where(status == "error", "action failed: template not found", ""),
            }

    copy_rows(conn, "main_eventlog", batches())


def _drift(conn, rng, runs) -> None:
    """A fact snapshot for a third of finished host runs; a change detected for some of them."""
    done = runs["done"][runs["job_of_host"]]
    pick_mask = done & (rng.random(len(done)) < 0.33)
    job = runs["job_of_host"][pick_mask]
    host_ids = runs["host_flat"][pick_mask]
    n = len(job)
    finished = timestamps(runs["finished"][job])
    ids = np.arange(1, n + 1)
    copy_rows(conn, "main_hostfactsnapshot", [{
        "id": ids, "created": finished, "modified": finished, "host_id": host_ids, "job_id": runs["ids"][job],
        "facts": concat('{"kernel": "6.1.', pa.array(rng.integers(0, 120, n)), '", "pkgs": ',
                        pa.array(rng.integers(400, 900, n)), "}"),
        "facts_hash": pc.replace_substring(uuid_strings(rng, n), "-", ""),
    }])
    drift = rng.random(n) < 0.4
    m = int(drift.sum())
    copy_rows(conn, "main_driftdetection", [{
        "created": finished.filter(pa.array(drift)), "modified": finished.filter(pa.array(drift)),
        "host_id": host_ids[drift], "snapshot_id": ids[drift],
        "fact_path": pick(rng, ["ansible_kernel", "packages.openssl", "services.sshd.state", "mounts./var"], m),
        "change_type": pick(rng, ["changed", "added", "removed"], m, [6, 2, 1]),
        "old_value": pick(rng, ["6.1.0", "3.0.11", "running", "ext4"], m),
        "new_value": pick(rng, ["6.1.2", "3.0.13", "stopped", "xfs"], m),
        "severity": pick(rng, ["info", "warning", "critical"], m, [6, 3, 1]),
    }])


def _challenges(conn, rng, plan: SeedPlan, users) -> None:
    """Short-lived WebAuthn challenges (5 minutes), a few a day; volatile by design."""
    for table in ("main_webauthnregistrationchallenge", "main_webauthnauthenticationchallenge"):
        at = np.concatenate([s + diurnal_offsets_us(rng, rng.poisson(plan.count(12))) for s in plan.day_starts_us()])
        at = np.sort(at[at < plan.anchor_us])
        copy_rows(conn, table, [{
            "user_id": rng.choice(users, len(at)),
            "challenge": uuid_strings(rng, len(at)),
            "created": timestamps(at),
            "expires_at": timestamps(at + 300 * _S),
        }])

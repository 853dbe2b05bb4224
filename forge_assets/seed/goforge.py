"""GoForge PaaS: projects and environments, deployments with build and deploy log phases, containers
with diurnal CPU and cumulative I/O counters that reset on restart, sessions and audit logs."""

from __future__ import annotations

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from forge_assets.pgcopy import copy_rows
from forge_assets.seed.common import (
    US_PER_DAY,
    US_PER_SECOND,
    SeedPlan,
    concat,
    daily_batches,
    diurnal_offsets_us,
    diurnal_weights,
    pick,
    timestamps,
    uuid_strings,
)

_S = US_PER_SECOND
_DAY = US_PER_DAY
_SAMPLE_EVERY = 300 * _S  # docker stats scraped every five minutes
_FIRST_SUNDAY_3AM = 3 * _DAY + 3 * 3_600 * _S  # 1970-01-04 03:00 UTC (the epoch was a Thursday)


def seed(conn: psycopg.Connection, plan: SeedPlan) -> None:
    """Generate and load every GoForge table."""
    rng = plan.rng("goforge")
    first = plan.day_starts_us()[0]
    users = _users(conn, rng, first)
    environments = _projects(conn, rng, users, first)
    deployments = _deployments(conn, rng, plan, environments)
    _containers_and_metrics(conn, rng, plan, deployments)
    _sessions_and_audit(conn, rng, plan, users)


def _users(conn, rng, first) -> pa.Array:
    n = 20
    ids = uuid_strings(rng, n)
    oauth = rng.random(n) < 0.4
    created = timestamps(np.full(n, first - 90 * _DAY))
    copy_rows(conn, "users", [{
        "id": ids, "email": [f"dev{i:02d}@goforge.example" for i in range(n)],
        "password_hash": pa.array(concat("$argon2id$v=19$m=65536,t=3,p=4$", uuid_strings(rng, n)), mask=oauth),
        "github_id": pa.array(rng.integers(10_000, 9_999_999, n), mask=~oauth),
        "github_access_token": pa.array(concat("gho_", pc.replace_substring(uuid_strings(rng, n), "-", "")), mask=~oauth),
        "created_at": created, "updated_at": created,
    }])
    sources = uuid_strings(rng, n)
    copy_rows(conn, "git_sources", [{
        "id": sources, "user_id": ids, "name": [f"source-{i}" for i in range(n)],
        "type": pick(rng, ["github", "gitlab", "gitea", "ssh"], n, [6, 2, 1, 1]),
        "access_token": concat("glpat-", uuid_strings(rng, n)),
        "ssh_private_key": concat("-----BEGIN OPENSSH PRIVATE KEY-----\n", uuid_strings(rng, n),
                                  "\n-----END OPENSSH PRIVATE KEY-----"),
        "created_at": created, "updated_at": created,
    }])
    return ids


def _projects(conn, rng, users, first) -> dict:
    n = 12
    ids = uuid_strings(rng, n)
    created = timestamps(np.full(n, first - 60 * _DAY))
    names = [f"service-{i:02d}" for i in range(n)]
    copy_rows(conn, "projects", [{
        "id": ids, "user_id": users.take(pa.array(rng.integers(0, len(users), n))), "name": names,
        "repository_url": [f"https://git.example/acme/{name}.git" for name in names],
        "created_at": created, "updated_at": created,
    }])
    env_names = ["production", "staging", "preview"]
    project = np.repeat(np.arange(n), 3)
    env_ids = uuid_strings(rng, len(project))
    env = np.tile(env_names, n)
    created = timestamps(np.full(len(project), first - 60 * _DAY))
    copy_rows(conn, "environments", [{
        "id": env_ids, "project_id": ids.take(pa.array(project)), "name": env,
        "domain": [f"{names[p]}-{e}.apps.example" for p, e in zip(project, env, strict=True)],
        "port": rng.choice([3000, 8000, 8080], len(project)),
        "replicas": np.where(env == "production", 3, 1),
        "created_at": created, "updated_at": created,
    }])
    m = len(project) * 4
    secret = rng.random(m) < 0.5
    copy_rows(conn, "env_variables", [{
        "id": uuid_strings(rng, m),
        "environment_id": env_ids.take(pa.array(np.repeat(np.arange(len(project)), 4))),
        "key": np.tile(["DATABASE_URL", "API_KEY", "LOG_LEVEL", "FEATURE_FLAGS"], len(project)),
        "value": concat("value-", uuid_strings(rng, m)),
        "is_secret": secret, "created_at": timestamps(np.full(m, first - 60 * _DAY)),
        "updated_at": timestamps(np.full(m, first - 60 * _DAY)),
    }])
    return {"ids": env_ids, "production": env == "production"}


def _deployments(conn, rng, plan: SeedPlan, environments) -> dict:
    """Deployments over the days; each with build then deploy log lines; the newest may be in flight."""
    env_count = len(environments["ids"])
    created = np.concatenate([s + np.sort(diurnal_offsets_us(rng, rng.poisson(plan.count(30)), peak_hour=15))
                              for s in plan.day_starts_us()])
    created = created[created < plan.anchor_us]
    n = len(created)
    ids = uuid_strings(rng, n)
    env = rng.integers(0, env_count, n)
    started = created + rng.integers(1, 30, n) * _S
    build = (rng.lognormal(np.log(150), 0.5, n) * _S).astype(np.int64)
    deploy = (rng.lognormal(np.log(40), 0.4, n) * _S).astype(np.int64)
    finished = started + build + deploy
    status = pick(rng, ["running", "failed", "rolled_back", "cancelled"], n, [80, 12, 4, 4]).astype(object)
    in_flight = finished > plan.anchor_us
    phase = np.where(started + build > plan.anchor_us, "building", "deploying")
    status[in_flight] = phase[in_flight]
    trigger = pick(rng, ["manual", "webhook", "rollback"], n, [3, 12, 1])
    copy_rows(conn, "deployments", [{
        "id": ids, "environment_id": environments["ids"].take(pa.array(env)), "status": status,
        "trigger_type": trigger, "commit_sha": pc.utf8_slice_codeunits(
            pc.replace_substring(uuid_strings(rng, n), "-", ""), 0, 40),
        "branch": pick(rng, ["main", "release", "feature/x"], n, [8, 2, 1]),
        "image_tag": concat("registry.example/app:", pa.array(rng.integers(1000, 9999, n))),
        "error_message": pa.array(np.where(status == "failed", "build step exited with code 1", None)),
        "started_at": timestamps(started), "finished_at": timestamps(np.where(in_flight, -1, finished)),
        "created_at": timestamps(created),
    }])

    def logs():
        lines_build, lines_deploy = 8, 5
        per = lines_build + lines_deploy
        dep = np.repeat(np.arange(n), per)
        step = np.tile(np.arange(per), n)
        is_build = step < lines_build
        at = np.where(
            is_build,
            started[dep] + build[dep] * step // lines_build,
            started[dep] + build[dep] + deploy[dep] * (step - lines_build) // lines_deploy,
        )
        at = np.where(step == lines_build - 1, started[dep] + build[dep], at)  # last build line ends the build
        at = np.where(step == per - 1, finished[dep], at)
        keep = at <= plan.anchor_us
        failed_line = (status[dep] == "failed") & (step == per - 1)
        level = np.where(failed_line, "error", pick(rng, ["debug", "info", "warn"], len(dep), [2, 12, 1]))
        yield {
            "id": uuid_strings(rng, int(keep.sum())),
            "deployment_id": ids.take(pa.array(dep[keep])), "timestamp": timestamps(at[keep]),
            "level": level[keep], "source": np.where(is_build, "build", "deploy")[keep],
            "message": concat(pa.array(np.where(is_build, "Step ", "Rollout ")[keep]), pa.array(step[keep]),
                              pa.array(np.where(failed_line, ": exited with code 1", ": ok")[keep])),
        }

    copy_rows(conn, "deployment_logs", logs())
    return {"ids": ids, "env": env, "status": status, "finished": finished, "production": environments["production"]}


def _containers_and_metrics(conn, rng, plan: SeedPlan, deployments) -> None:
    """A container per running deployment replica, each sampled every five minutes while it lived."""
    live = np.flatnonzero(deployments["status"] == "running")
    # The first successful deployments started the long-running containers; they report ever since.
    live = live[np.argsort(deployments["finished"][live])][:plan.count(24)]
    n = len(live)
    ids = uuid_strings(rng, n)
    born = deployments["finished"][live]
    copy_rows(conn, "containers", [{
        "id": ids, "deployment_id": deployments["ids"].take(pa.array(live)),
        "docker_id": pc.replace_substring(uuid_strings(rng, n), "-", ""),
        "name": [f"app-{i:03d}" for i in range(n)], "image": np.full(n, "registry.example/app:latest"),
        "status": np.full(n, "running"), "created_at": timestamps(born), "updated_at": timestamps(born),
    }])
    first = plan.day_starts_us()[0]
    memory_limit = rng.choice([512, 1024, 2048], n) * 2**20
    base_cpu = rng.uniform(5, 40, n)

    def batches():
        for day_start in plan.day_starts_us():
            ticks = day_start + np.arange(0, _DAY, _SAMPLE_EVERY)
            ticks = ticks[ticks < plan.anchor_us]
            c = np.repeat(np.arange(n), len(ticks))
            t = np.tile(ticks, n)
            alive = t >= np.maximum(born[c], first)
            c, t = c[alive], t[alive]
            hours = (t % _DAY) / 3_600_000_000
            cpu = np.clip(base_cpu[c] * diurnal_weights(hours) + rng.normal(0, 4, len(c)), 0, 100)
            mem_pct = np.clip(35 + 20 * diurnal_weights(hours) + rng.normal(0, 3, len(c)), 0, 100)
            # Cumulative counters since the container (re)started; restarts happen at 03:00 on Sundays.
            last_restart = t - (t - _FIRST_SUNDAY_3AM) % (7 * _DAY)
            since = (t - np.maximum(born[c], last_restart)) / _S
            yield {
                "id": uuid_strings(rng, len(c)),
                "container_id": ids.take(pa.array(c)), "timestamp": timestamps(t),
                "cpu_percent": np.round(cpu, 2), "memory_usage": (mem_pct / 100 * memory_limit[c]).astype(np.int64),
                "memory_limit": memory_limit[c], "memory_percent": np.round(mem_pct, 2),
                "network_rx": (since * 52_000).astype(np.int64), "network_tx": (since * 18_000).astype(np.int64),
                "block_read": (since * 4_000).astype(np.int64), "block_write": (since * 9_000).astype(np.int64),
            }

    copy_rows(conn, "container_metrics", batches())


def _sessions_and_audit(conn, rng, plan: SeedPlan, users) -> None:
    copy_rows(conn, "sessions", daily_batches(rng, plan, 25, build=lambda at: {
        "id": uuid_strings(rng, len(at)),
        "user_id": users.take(pa.array(rng.integers(0, len(users), len(at)))),
        "token_hash": pc.replace_substring(concat(uuid_strings(rng, len(at)), uuid_strings(rng, len(at))), "-", ""),
        "expires_at": timestamps(at + 7 * _DAY), "created_at": timestamps(at), "last_active_at": timestamps(at),
    }))
    copy_rows(conn, "audit_logs", daily_batches(rng, plan, 60, build=lambda at: {
        "id": uuid_strings(rng, len(at)),
        "user_id": users.take(pa.array(rng.integers(0, len(users), len(at)))),
        "action": pick(rng, ["deployment.create", "project.update", "env_variable.update", "login"], len(at)),
        "resource_type": pick(rng, ["deployment", "project", "environment", "user"], len(at)),
        "resource_id": uuid_strings(rng, len(at)),
        "ip_address": concat("198.51.100.", pa.array(rng.integers(1, 255, len(at)))),
        "user_agent": np.full(len(at), "goforge-cli/1.4"), "created_at": timestamps(at),
    }))

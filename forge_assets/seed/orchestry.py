"""Orchestry autoscaler: applications with replicas, per-instance and per-app metrics with a daily
rhythm, and an event trail with occasional error storms."""

from __future__ import annotations

import numpy as np
import psycopg
import pyarrow as pa

from forge_assets.pgcopy import copy_rows
from forge_assets.seed.common import (
    US_PER_DAY,
    US_PER_SECOND,
    SeedPlan,
    concat,
    diurnal_offsets_us,
    diurnal_weights,
    pick,
    timestamps,
)

_S = US_PER_SECOND
_DAY = US_PER_DAY
_SAMPLE_EVERY = 900 * _S
APP_NAMES = ["web", "api", "auth", "search", "billing", "media", "chat", "jobs", "cart", "admin"]
METRIC_TYPES = ["cpu_percent", "memory_percent", "rps", "latency_p95", "active_connections"]
EVENT_TYPES = ["registration", "scaling", "health", "config", "deployment", "error", "warning", "network",
               "resource", "security"]


def seed(conn: psycopg.Connection, plan: SeedPlan) -> None:
    """Generate and load every Orchestry table."""
    rng = plan.rng("orchestry")
    first = plan.day_starts_us()[0]
    n = plan.count(10)
    apps = [f"app-{APP_NAMES[i % len(APP_NAMES)]}" + (f"-{i // len(APP_NAMES)}" if i >= len(APP_NAMES) else "")
            for i in range(n)]
    created = timestamps(np.full(n, first - 30 * _DAY))
    replicas = rng.integers(2, 5, n)
    copy_rows(conn, "applications", [{
        "name": apps,
        "spec": [f'{{"spec": {{"image": "registry.example/{a}:1.{i}", "ports": [{{"containerPort": 8080}}]}}}}'
                 for i, a in enumerate(apps)],
        "status": pick(rng, ["running", "running", "running", "updating"], n), "created_at": created,
        "updated_at": created, "replicas": replicas, "desired_replicas": replicas,
        "mode": pick(rng, ["auto", "manual"], n, [4, 1]),
    }])
    app_of = np.repeat(np.arange(n), replicas)
    replica_index = np.concatenate([np.arange(r) for r in replicas])
    m = len(app_of)
    copy_rows(conn, "instances", [{
        "app_name": np.asarray(apps)[app_of], "container_id": [f"c{i:011x}" for i in range(m)],
        "container_name": [f"{apps[a]}-{r}" for a, r in zip(app_of, replica_index, strict=True)],
        "replica_index": replica_index, "ip": [f"10.20.{i // 250}.{i % 250 + 2}" for i in range(m)],
        "port": np.full(m, 8080), "status": np.full(m, "running"),
        "health_status": pick(rng, ["healthy", "healthy", "unhealthy"], m), "created_at": timestamps(np.full(m, first)),
        "updated_at": timestamps(np.full(m, plan.anchor_us)), "started_at": timestamps(np.full(m, first)),
        "last_health_check": timestamps(np.full(m, plan.anchor_us)),
        "cpu_percent": np.round(rng.uniform(5, 60, m), 1), "memory_percent": np.round(rng.uniform(20, 70, m), 1),
    }])
    copy_rows(conn, "scaling_policies", [{"app_name": apps, "min_replicas": np.ones(n, int),
                                          "max_replicas": np.full(n, 8), "created_at": created, "updated_at": created}])
    copy_rows(conn, "health_checks", [{"app_name": apps, "path": np.full(n, "/healthz"), "port": np.full(n, 8080),
                                       "created_at": created, "updated_at": created}])
    _metrics(conn, rng, plan, apps, app_of, replica_index)
    _events(conn, rng, plan, apps)


def _metrics(conn, rng, plan: SeedPlan, apps, app_of, replica_index) -> None:
    """Per instance and per app, each metric type every fifteen minutes."""
    load = rng.uniform(0.5, 2.0, len(apps))

    def batches():
        for day_start in plan.day_starts_us():
            ticks = day_start + np.arange(0, _DAY, _SAMPLE_EVERY)
            ticks = ticks[ticks < plan.anchor_us]
            for level, owners in (("instance", app_of), ("app", np.arange(len(apps)))):
                series = np.repeat(np.arange(len(owners)), len(ticks) * len(METRIC_TYPES))
                kind = np.tile(np.repeat(np.arange(len(METRIC_TYPES)), len(ticks)), len(owners))
                t = np.tile(ticks, len(owners) * len(METRIC_TYPES))
                app = owners[series]
                wave = diurnal_weights((t % _DAY) / 3_600_000_000, peak_hour=13) * load[app]
                noise = rng.normal(1.0, 0.08, len(t))
                value = np.select(
                    [kind == 0, kind == 1, kind == 2, kind == 3],
                    [np.clip(25 * wave * noise, 0, 100), np.clip(40 + 10 * wave * noise, 0, 100),
                     120 * wave * noise, 80 + 60 * wave * noise],
                    default=np.round(30 * wave * noise),
                )
                labels = (concat('{"replica": "', pa.array(replica_index[series]), '"}') if level == "instance"
                          else pa.nulls(len(t), pa.string()))
                yield {
                    "app_name": np.asarray(apps)[app], "metric_type": np.asarray(METRIC_TYPES)[kind],
                    "timestamp": timestamps(t), "value": np.round(np.maximum(value, 0), 3).astype(np.float32),
                    "labels": labels,
                    "unit": np.asarray(["%", "%", "req/s", "ms", "conn"])[kind],
                    "aggregation_level": np.full(len(t), level),
                }

    copy_rows(conn, "metrics", batches())


def _events(conn, rng, plan: SeedPlan, apps) -> None:
    """A steady trail of events; on a few days an application has an error storm."""
    def batches():
        for day_start in plan.day_starts_us():
            storm = rng.random() < 0.08
            n = rng.poisson(plan.count(120)) + (rng.poisson(plan.count(300)) if storm else 0)
            at = day_start + np.sort(diurnal_offsets_us(rng, n, peak_hour=13))
            at = at[at < plan.anchor_us]
            k = len(at)
            kind = pick(rng, EVENT_TYPES, k, [1, 6, 5, 2, 2, 2, 3, 1, 2, 0.5] if not storm
                        else [0.2, 3, 6, 0.5, 0.5, 12, 6, 1, 2, 0.2])
            severity = np.where(kind == "error", pick(rng, ["error", "critical"], k, [4, 1]),
                                np.where(kind == "warning", "warning", pick(rng, ["debug", "info"], k, [1, 6])))
            yield {
                "event_type": kind,
                "event_category": pick(rng, ["application", "system", "cluster", "performance"], k, [6, 2, 1, 2]),
                "app_name": np.asarray(apps, dtype=object)[rng.integers(0, len(apps), k)],
                "message": concat(pa.array(kind), " event for replica ", pa.array(rng.integers(0, 4, k))),
                "details": concat('{"from": ', pa.array(rng.integers(1, 4, k)), ', "to": ',
                                  pa.array(rng.integers(2, 6, k)), "}"),
                "severity": severity, "timestamp": timestamps(at),
                "source": pick(rng, ["controller", "autoscaler", "health_checker"], k),
            }

    copy_rows(conn, "events", batches())

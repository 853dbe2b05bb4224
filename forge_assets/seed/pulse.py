"""OpsConductor-Pulse IoT fleet: tenants and subscriptions, devices reporting telemetry every ten
minutes into day partitions, service metrics, alerts and their notifications."""

from __future__ import annotations

import numpy as np
import psycopg
import pyarrow as pa
from psycopg import sql

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
TENANTS = ["tenant-acme", "tenant-globex", "tenant-initech", "tenant-umbrella"]
SEVERITIES = ["critical", "major", "minor", "warning", "info"]
ALERT_STATUSES = ["OPEN", "ACKNOWLEDGED", "CLOSED"]


def seed(conn: psycopg.Connection, plan: SeedPlan) -> None:
    """Generate and load every Pulse table."""
    rng = plan.rng("pulse")
    first = plan.day_starts_us()[0]
    created = timestamps(np.full(len(TENANTS), first - 200 * _DAY))
    copy_rows(conn, "tenants", [{"tenant_id": TENANTS, "name": [t.split("-")[1].title() for t in TENANTS],
                                 "created_at": created, "updated_at": created}])
    copy_rows(conn, "subscriptions", [{
        "subscription_id": [f"sub-{t}" for t in TENANTS], "tenant_id": TENANTS,
        "tier": ["enterprise", "standard", "starter", "standard"], "device_limit": [100, 40, 10, 40],
        "term_start": created, "created_at": created,
    }])
    n = plan.count(40)
    tenant = rng.integers(0, len(TENANTS), n)
    devices = np.array([f"dev-{i:05d}" for i in range(n)], dtype=object)
    sites = np.array([f"site-{i % 7}" for i in range(n)], dtype=object)
    copy_rows(conn, "device_registry", [{
        "tenant_id": np.asarray(TENANTS)[tenant], "device_id": devices, "site_id": sites,
        "model": pick(rng, ["th-sensor-2", "gw-100", "meter-x"], n), "firmware_version": np.full(n, "2.4.1"),
        "api_token_hash": [f"{i:064x}" for i in rng.integers(1, 2**62, n)],
        "last_seen_at": timestamps(np.full(n, plan.anchor_us)), "created_at": timestamps(np.full(n, first - 30 * _DAY)),
        "updated_at": timestamps(np.full(n, plan.anchor_us)),
    }])
    _partitions(conn, plan)
    _telemetry(conn, rng, plan, np.asarray(TENANTS)[tenant], devices, sites)
    _system_metrics(conn, rng, plan)
    _alerts(conn, rng, plan, np.asarray(TENANTS)[tenant], devices, sites)


def _partitions(conn, plan: SeedPlan) -> None:
    """A day partition of telemetry and system_metrics for every seeded day and the next two."""
    for parent in ("telemetry", "system_metrics"):
        for day in range(plan.days + 2):
            start = np.datetime64(int(plan.day_starts_us()[0] // _DAY) + day, "D")
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(f"{parent}_p{str(start).replace('-', '')}"), sql.Identifier(parent),
                sql.Literal(f"{start} 00:00:00+00"), sql.Literal(f"{start + 1} 00:00:00+00")))


def _telemetry(conn, rng, plan: SeedPlan, tenant, devices, sites) -> None:
    battery_drain = rng.uniform(0.05, 0.3, len(devices))

    def batches():
        for day_start in plan.day_starts_us():
            ticks = day_start + np.arange(0, _DAY, 600 * _S)
            ticks = ticks[ticks < plan.anchor_us]
            d = np.repeat(np.arange(len(devices)), len(ticks))
            t = np.tile(ticks, len(devices))
            hours = (t % _DAY) / 3_600_000_000
            temp = 18 + 6 * diurnal_weights(hours, peak_hour=15) + rng.normal(0, 0.8, len(t))
            humidity = np.clip(55 - 10 * diurnal_weights(hours, peak_hour=15) + rng.normal(0, 3, len(t)), 0, 100)
            battery = np.clip(100 - battery_drain[d] * ((t - plan.day_starts_us()[0]) / 3_600_000_000 % 400), 0, 100)
            yield {
                "time": timestamps(t), "tenant_id": tenant[d], "device_id": devices[d], "site_id": sites[d],
                "seq": (t // (600 * _S)) % 1_000_000,
                "metrics": concat('{"temp_c": ', pa.array(np.round(temp, 2)), ', "humidity_pct": ',
                                  pa.array(np.round(humidity, 1)), ', "battery_pct": ', pa.array(np.round(battery, 1)),
                                  ', "rssi_dbm": ', pa.array(rng.integers(-95, -40, len(t))), "}"),
            }

    copy_rows(conn, "telemetry", batches())


def _system_metrics(conn, rng, plan: SeedPlan) -> None:
    services = ["ingest", "evaluator", "dispatcher", "api"]
    names = ["messages_per_second", "queue_depth", "p95_latency_ms"]

    def batches():
        for day_start in plan.day_starts_us():
            ticks = day_start + np.arange(0, _DAY, 900 * _S)
            ticks = ticks[ticks < plan.anchor_us]
            k = len(services) * len(names)
            t = np.tile(ticks, k)
            combo = np.repeat(np.arange(k), len(ticks))
            wave = diurnal_weights((t % _DAY) / 3_600_000_000)
            yield {
                "time": timestamps(t), "service": np.asarray(services)[combo // len(names)],
                "metric_name": np.asarray(names)[combo % len(names)],
                "value": np.round(wave * rng.uniform(50, 150, len(t)), 2), "tags": np.full(len(t), '{"region": "eu"}'),
            }

    copy_rows(conn, "system_metrics", batches())


def _alerts(conn, rng, plan: SeedPlan, tenant, devices, sites) -> None:
    at = np.concatenate([s + diurnal_offsets_us(rng, rng.poisson(plan.count(25))) for s in plan.day_starts_us()])
    at = np.sort(at[at < plan.anchor_us])
    n = len(at)
    d = rng.integers(0, len(devices), n)
    age = plan.anchor_us - at
    status = np.where(age > 2 * _DAY, "CLOSED", pick(rng, ALERT_STATUSES, n, [3, 2, 5])).astype(object)
    closed = np.where(status == "CLOSED", at + rng.integers(60, 6 * 3600, n) * _S, -1)
    closed = np.where(closed > plan.anchor_us, -1, closed)
    status[(status == "CLOSED") & (closed < 0)] = "ACKNOWLEDGED"
    kind = pick(rng, ["THRESHOLD", "NO_TELEMETRY", "ANOMALY", "BATTERY_LOW"], n, [5, 2, 1, 2])
    ids = np.arange(1, n + 1)
    copy_rows(conn, "fleet_alert", [{
        "id": ids, "tenant_id": tenant[d], "created_at": timestamps(at), "closed_at": timestamps(closed),
        "site_id": sites[d], "device_id": devices[d], "alert_type": kind,
        "fingerprint": concat(pa.array(kind), ":", pa.array(devices[d])), "status": status,
        "severity": pick(rng, SEVERITIES, n, [1, 2, 4, 4, 2]), "summary": concat(pa.array(kind), " on ", pa.array(devices[d])),
    }])
    per = rng.integers(1, 3, n)
    a = np.repeat(np.arange(n), per)
    copy_rows(conn, "notification_log", [{
        "tenant_id": tenant[d][a], "alert_id": ids[a], "channel": pick(rng, ["email", "webhook", "sms"], len(a)),
        "recipient": np.full(len(a), "oncall@example.com"), "status": pick(rng, ["sent", "failed"], len(a), [20, 1]),
        "sent_at": timestamps(np.minimum(at[a] + rng.integers(1, 120, len(a)) * _S, plan.anchor_us)),
    }])
    conn.execute("SELECT setval(pg_get_serial_sequence('fleet_alert', 'id'), (SELECT max(id) FROM fleet_alert))")

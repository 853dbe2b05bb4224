"""OpenOrchestrator RPA: triggers of three kinds, process logs, work queues (one with a growing
backlog), constants and encrypted credentials. Its timestamps are naive UTC wall times."""

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
    pick,
    timestamps,
    uuid_strings,
)

_S = US_PER_SECOND
_DAY = US_PER_DAY
PROCESSES = ["InvoiceBot", "PayrollSync", "ClaimsIntake", "ReportMailer", "VendorOnboarding", "LedgerRecon"]
QUEUES = ["invoices", "claims", "vendor_docs"]


def seed(conn: psycopg.Connection, plan: SeedPlan) -> None:
    """Generate and load every OpenOrchestrator table."""
    rng = plan.rng("openorchestrator")
    first = plan.day_starts_us()[0]
    _triggers(conn, rng, plan)
    _logs(conn, rng, plan)
    _queues(conn, rng, plan)
    m = 10
    changed = timestamps(np.full(m, first - 10 * _DAY), naive=True)
    copy_rows(conn, ("Constants",), [{"name": [f"setting_{i}" for i in range(m)],
                                      "value": [f"value {i}" for i in range(m)], "changed_at": changed}])
    copy_rows(conn, ("Credentials",), [{
        "name": [f"{p}_login" for p in PROCESSES], "username": [f"svc_{p.lower()}" for p in PROCESSES],
        "password": concat("gAAAAAB", uuid_strings(rng, len(PROCESSES))),
        "changed_at": timestamps(np.full(len(PROCESSES), first - 5 * _DAY), naive=True),
    }])


def _triggers(conn, rng, plan: SeedPlan) -> None:
    n = 12
    ids = uuid_strings(rng, n)
    kind = np.array(["SINGLE", "SCHEDULED", "QUEUE"] * 4, dtype=object)
    process = np.asarray(PROCESSES, dtype=object)[np.arange(n) % len(PROCESSES)]
    copy_rows(conn, ("Triggers",), [{
        "id": ids, "trigger_name": [f"{p} {k.lower()} {i}" for i, (p, k) in enumerate(zip(process, kind, strict=True))],
        "process_name": process, "last_run": timestamps(plan.anchor_us - rng.integers(1, 48, n) * 3_600 * _S, naive=True),
        "process_path": [f"C:/robots/{p}/main.py" for p in process],
        "process_status": pick(rng, ["IDLE", "RUNNING", "FAILED", "DONE", "PAUSED"], n, [6, 2, 1, 2, 1]),
        "is_git_repo": rng.random(n) < 0.5, "is_blocking": rng.random(n) < 0.3, "type": kind,
    }])
    next_run = timestamps(plan.anchor_us + rng.integers(1, 24, n) * 3_600 * _S, naive=True)
    for table, k, extra in (
        ("Single_Triggers", "SINGLE", {}),
        ("Scheduled_Triggers", "SCHEDULED", {"cron_expr": "0 6 * * 1-5"}),
        ("Queue_Triggers", "QUEUE", {"queue_name": QUEUES[0], "min_batch_size": 1}),
    ):
        sel = pa.array(kind == k)
        rows = {"id": ids.filter(sel)}
        if k != "QUEUE":
            rows["next_run"] = next_run.filter(sel)
        rows.update({name: np.full(len(rows["id"]), value) for name, value in extra.items()})
        copy_rows(conn, (table,), [rows])


def _logs(conn, rng, plan: SeedPlan) -> None:
    def batches():
        for day_start in plan.day_starts_us():
            at = day_start + np.sort(diurnal_offsets_us(rng, rng.poisson(plan.count(1500)), peak_hour=10))
            at = at[at < plan.anchor_us]
            k = len(at)
            level = pick(rng, ["TRACE", "INFO", "ERROR"], k, [5, 12, 1])
            yield {
                "id": uuid_strings(rng, k), "log_time": timestamps(at, naive=True), "log_level": level,
                "process_name": pick(rng, PROCESSES, k, [5, 2, 4, 1, 2, 3]),
                "log_message": concat(pa.array(np.where(level == "ERROR", "Failed step ", "Completed step ")),
                                      pa.array(rng.integers(1, 40, k))),
            }

    copy_rows(conn, ("Logs",), batches())


def _queues(conn, rng, plan: SeedPlan) -> None:
    """Elements arrive in office hours; `invoices` falls behind in the last two days (a backlog)."""
    def batches():
        for day_start in plan.day_starts_us():
            at = day_start + np.sort(diurnal_offsets_us(rng, rng.poisson(plan.count(400)), peak_hour=10))
            at = at[at < plan.anchor_us]
            k = len(at)
            queue = pick(rng, QUEUES, k, [5, 3, 2])
            wait = (rng.exponential(600, k) * _S).astype(np.int64)
            work = (rng.lognormal(np.log(np.where(queue == "claims", 240, 60)), 0.5) * _S).astype(np.int64)
            start, end = at + wait, at + wait + work
            backlog = (queue == "invoices") & (at > plan.anchor_us - 2 * _DAY)
            not_started = backlog | (start > plan.anchor_us)
            in_progress = ~not_started & (end > plan.anchor_us)
            status = np.where(rng.random(k) < 0.06, "FAILED", "DONE").astype(object)
            status[in_progress] = "IN_PROGRESS"
            status[not_started] = "NEW"
            yield {
                "id": uuid_strings(rng, k), "queue_name": queue, "status": status,
                "data": concat('{"document": "', pa.array(rng.integers(10_000, 99_999, k)), '.pdf"}'),
                "reference": concat("REF-", pa.array(rng.integers(100_000, 999_999, k))),
                "created_date": timestamps(at, naive=True),
                "start_date": timestamps(np.where(not_started, -1, start), naive=True),
                "end_date": timestamps(np.where(not_started | in_progress, -1, end), naive=True),
                "message": pa.array(np.where(status == "FAILED", "Business rule exception", None)),
                "created_by": pick(rng, PROCESSES, k),
            }

    copy_rows(conn, ("Queues",), batches())

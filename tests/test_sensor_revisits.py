"""The retention sensor revisits what needs it: late rows after a success, a failed day after its back-off (and
one alert), a restored day once its hold expires; never a day a queued or running run covers; ranges of days
per run, rollups first. Decisions are `plan_tick`'s, fed the same inputs the sensor gathers."""

from datetime import date, datetime, timedelta, timezone

from dagster import AssetKey

from forge_assets.operations import Operations
from forge_assets.retention.catalog import entries
from forge_assets.rollups.registry import ROLLUPS
from forge_assets.sensors.retention_sensor import TableState, plan_tick

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
OPS = Operations(sensor_max_runs=20, archive_days_per_run=5)
ENTRY = entries("goforge", "audit_logs")[0]  # no rollup reads it
DAYS = tuple(date(2025, 6, 1) + timedelta(days=i) for i in range(3))


def _state(due=DAYS, held=None):
    return TableState(ENTRY, due[0] if due else None, tuple(due), held or {})


def _tick(cursor, now=NOW, outcomes=None, **kwargs):
    return plan_tick([kwargs.pop("state", _state())], kwargs.pop("materialized", {}), cursor, now,
                     outcomes=outcomes or {}, ops=kwargs.pop("ops", OPS), **kwargs)


def _range(request):
    return (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"])


def test_due_days_go_in_one_ranged_run_and_are_not_asked_twice_while_pending():
    first = _tick({})
    (request,) = first.requests
    assert _range(request) == (DAYS[0].isoformat(), DAYS[-1].isoformat())
    assert request.tags["forge/table"] == ENTRY.key and request.tags["forge/attempt"] == "1"
    # next tick: the run has not finished (no outcome yet) and is not even listed as running
    assert _tick(first.cursor, NOW + timedelta(minutes=1)).requests == []


def test_a_day_a_queued_or_running_run_covers_is_never_requested():
    in_flight = frozenset({(ENTRY.key, DAYS[1])})
    plan = _tick({}, in_flight=in_flight)
    assert sorted(_range(r) for r in plan.requests) == [(DAYS[0].isoformat(),) * 2, (DAYS[2].isoformat(),) * 2]
    assert any("queued or running" in line for line in plan.waiting)


def test_late_rows_after_a_successful_run_get_a_new_run_with_a_fresh_key():
    first = _tick({})
    key = first.requests[0].run_key
    late = _tick(first.cursor, NOW + timedelta(minutes=3), {key: "success"}, state=_state(DAYS[1:2]))
    (again,) = late.requests
    assert again.run_key != key and _range(again) == (DAYS[1].isoformat(),) * 2
    assert again.tags["forge/attempt"] == "1" and late.failing == []


def test_a_failed_day_backs_off_alerts_once_and_is_retried_with_a_fresh_key():
    first = _tick({})
    key = first.requests[0].run_key
    failed = _tick(first.cursor, NOW + timedelta(minutes=3), {key: "failure"})
    assert failed.requests == [] and len(failed.failing) == 3  # each day of the run, once
    assert _tick(failed.cursor, NOW + timedelta(minutes=30), {key: "failure"}).failing == []
    retry_at = NOW + timedelta(minutes=3) + OPS.retry_backoff[0] + timedelta(minutes=1)
    retried = _tick(failed.cursor, retry_at, {key: "failure"})
    (request,) = retried.requests
    assert request.run_key not in (key,) and request.tags["forge/attempt"] == "2" and retried.failing == []
    # it fails again: the next wait is the second back-off (4 h), and no new alert
    second = _tick(retried.cursor, retry_at + timedelta(minutes=3), {key: "failure", request.run_key: "failure"})
    assert second.requests == [] and second.failing == []
    assert _tick(second.cursor, retry_at + timedelta(hours=2), {request.run_key: "failure"}).requests == []
    assert _tick(second.cursor, retry_at + timedelta(hours=4, minutes=5), {request.run_key: "failure"}).requests


def test_a_restored_day_waits_for_its_hold_to_expire():
    hold_ends = NOW + timedelta(days=2)
    held = _tick({}, state=_state(DAYS[:1], {DAYS[0]: hold_ends}))
    assert held.requests == [] and any("on hold" in line for line in held.waiting)
    expired = _tick({}, hold_ends + timedelta(minutes=1), state=_state(DAYS[:1], {DAYS[0]: hold_ends}))
    assert [_range(r) for r in expired.requests] == [(DAYS[0].isoformat(),) * 2]


def test_a_range_never_spans_a_blocked_day_nor_more_than_the_cap():
    days = tuple(date(2025, 6, 1) + timedelta(days=i) for i in range(12))
    plan = _tick({}, state=_state(days), in_flight=frozenset({(ENTRY.key, days[3])}))
    assert sorted(_range(r) for r in plan.requests) == [
        ("2025-06-01", "2025-06-03"), ("2025-06-05", "2025-06-09"), ("2025-06-10", "2025-06-12")]


def test_missing_rollups_are_requested_first_for_a_range_and_the_archive_waits():
    entry = entries("goforge", "container_metrics")[0]
    state = TableState(entry, DAYS[0], DAYS)
    plan = plan_tick([state], {}, {}, NOW, ops=OPS)
    (rollups,) = plan.requests
    assert rollups.job_name == "rollups" and _range(rollups) == (DAYS[0].isoformat(), DAYS[-1].isoformat())
    assert rollups.tags["dagster/priority"] == "2"
    assert set(rollups.asset_selection) == {AssetKey(s.name) for s in ROLLUPS if s.source == "goforge"}
    waiting = plan_tick([state], {}, plan.cursor, NOW + timedelta(minutes=1), ops=OPS,
                        rollups_in_flight=frozenset({"goforge"}))
    assert waiting.requests == []
    done = {AssetKey(s.name): {d.isoformat() for d in DAYS} for s in ROLLUPS}
    (archive,) = plan_tick([state], done, waiting.cursor, NOW + timedelta(minutes=2), ops=OPS).requests
    assert archive.job_name == "archive_goforge" and _range(archive) == (DAYS[0].isoformat(), DAYS[-1].isoformat())


def test_days_before_the_first_partition_are_requested_as_the_first_partition():
    old = (date(2024, 12, 29), date(2024, 12, 30), date(2025, 1, 2))
    (request,) = _tick({}, state=_state(old)).requests
    assert _range(request) == ("2025-01-01", "2025-01-02")

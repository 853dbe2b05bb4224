"""The operator's policy file on a real PostgreSQL: rules archive each kind of row on its own day, nothing
else moves, partitions go only when every row in them is archived; every bad file is one line, exit 2."""

import os
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import NOW, conn_to, content, day_keys_in_ledgered_files, history
from psycopg import sql

from forge_assets.cli import main
from forge_assets.config import ConfigError, load_settings
from forge_assets.db import drop_source_databases
from forge_assets.effective import effective_operations, operation_settings, purge_setting, purges, require_purge
from forge_assets.retention.catalog import (
    CATALOG,
    DEPLOYMENT_IN_PROGRESS,
    UNFINISHED_JOB,
    CatalogError,
    entries,
    keep_cutoff,
    unfinished_values,
)
from forge_assets.retention.engine import archive_day, days_holding_rows, last_overdue_day, oldest_day, overdue_days
from forge_assets.retention.policy import PolicyError, load_policy
from forge_assets.retention.preflight import PreflightError
from forge_assets.roles import apply_grants
from forge_assets.sensors.retention_sensor import build_retention_sensor

CLI = str(Path(sys.executable).with_name("forge-assets"))
LATER = NOW + timedelta(days=15)
# Children of main_job (and their own `after`) must not keep rows longer than main_job: shortened with it.
POLICY = """\
forge:
  main_jobhostsummary: {{keep_days: 60}}
  main_hostfactsnapshot: {{keep_days: 60}}
  main_driftdetection: {{keep_days: 60}}
  main_jobevent:
    keep_days: 60
    rules:
      - {{where: {{status: [failed, error]}}, keep_days: 80}}
  main_job:
    keep_days: 60
    rules:
      - {{where: {{status: [failed, error]}}, keep_days: 80}}
      - {{where: {{job_template: [{template!r}]}}, keep_days: 70}}
operations:
  grace_days: 1
"""


def _lod(keep, now):
    return (now - timedelta(days=keep)).date() - timedelta(days=1)


@pytest.fixture(scope="module")
def forge(settings, tmp_path_factory):
    target = history(settings, tmp_path_factory, sources=("forge",), days=100)
    yield target
    drop_source_databases(target)


@pytest.fixture(scope="module")
def template(forge):
    """The template with most jobs among those not failed: its own rule has rows to move."""
    with conn_to(forge, "forge") as conn:
        return conn.execute(
            "SELECT t.name FROM main_job j JOIN main_jobtemplate t ON t.id = j.job_template_id "
            "WHERE j.status NOT IN ('failed', 'error') GROUP BY t.name ORDER BY count(*) DESC, t.name LIMIT 1"
        ).fetchone()[0]


@pytest.fixture(scope="module")
def policy(template, tmp_path_factory):
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text(POLICY.format(template=template))
    return load_policy(path)


def _rows(conn, template):
    """Every main_job and main_jobevent row as (key, day, keep_days) by the rules, computed here in Python."""
    def keep(status, name):
        return 80 if status in ("failed", "error") else 70 if name == template else 60

    jobs = {(i,): (created.date(), keep(status, name)) for i, created, status, name in conn.execute(
        "SELECT j.id, j.created AT TIME ZONE 'UTC', j.status, t.name FROM main_job j "
        "LEFT JOIN main_jobtemplate t ON t.id = j.job_template_id")}
    events = {(i, job): (created.date(), 80 if status in ("failed", "error") else 60)
              for i, job, created, status in conn.execute(
                  "SELECT e.id, e.job_id, e.job_created AT TIME ZONE 'UTC', j.status FROM main_jobevent e "
                  "LEFT JOIN main_job j ON j.id = e.job_id")}
    conn.rollback()
    return {"forge.main_job": jobs, "forge.main_jobevent": events}


def _archive(target, selected, now):
    with conn_to(target, "forge") as conn:
        for entry in selected:
            for day in overdue_days(conn, entry, now):
                archive_day(conn, entry, day, target.lake_root, now)


def _partitions(conn) -> dict[str, int]:
    """Rows in each day partition of main_jobevent (named main_jobevent_pYYYYMMDD by its launch day)."""
    names = [n for (n,) in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'main_jobevent'::regclass AND c.relname <> 'main_jobevent_default'")]
    counts = {n: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(n))).fetchone()[0]
              for n in names}
    conn.rollback()
    return counts


def test_rules_archive_each_kind_of_row_on_its_own_day(forge, policy, template):
    selected = [e for e in policy.effective_entries("forge") if e.key in (
        "forge.main_jobhostsummary", "forge.main_driftdetection", "forge.main_hostfactsnapshot",
        "forge.main_job", "forge.main_jobevent")]
    untouched = [e for e in entries("forge") if e.key not in {s.key for s in selected} and e.archives]
    with conn_to(forge, "forge") as conn:
        rows = _rows(conn, template)
        before_other = {e.key: content(conn, e) for e in untouched}
        partitions_before = _partitions(conn)
    kinds = Counter(keep for table in rows.values() for _, keep in table.values())
    assert kinds[60] and kinds[70] and kinds[80], kinds

    for now in (NOW, LATER):  # the second pass: more of the same days have become due
        _archive(forge, selected, now)
        with conn_to(forge, "forge") as conn:
            for entry in (e for e in selected if e.key in rows):
                due = {key for key, (day, keep) in rows[entry.key].items() if day <= _lod(keep, now)}
                left = set(conn.execute(f"SELECT {', '.join(entry.key_columns)} FROM {entry.table}").fetchall())
                assert left == set(rows[entry.key]) - due, (entry.key, now)  # exactly the due rows left
                by_day = defaultdict(Counter)
                for key in due:
                    by_day[rows[entry.key][key][0]][key] += 1
                for day, keys in by_day.items():  # and each day's files hold exactly them, once
                    assert day_keys_in_ledgered_files(conn, entry, day, forge.lake_root) == keys, (entry.key, day)
            conn.rollback()
            # a rule's rows of an early day stay until their own keep_days, then leave in a file of their own
            if now == LATER:
                files = conn.execute(
                    "SELECT day, count(DISTINCT run_id) FROM forge_retention.archive_ledger WHERE entry = "
                    "'forge.main_job' GROUP BY day HAVING count(DISTINCT run_id) > 1").fetchall()
                assert files, "no day of main_job was archived twice"
            partitions = _partitions(conn)
        # a partition goes when every row in it is archived, and only then; a partition of a day with rows
        # kept longer stays with exactly those rows
        kept = Counter(f"main_jobevent_p{d:%Y%m%d}" for d, keep in rows["forge.main_jobevent"].values()
                       if d > _lod(keep, now))
        assert partitions == {name: kept[name] for name in partitions_before if kept[name]}, now
    assert set(partitions_before) - set(partitions), "no partition was dropped"

    with conn_to(forge, "forge") as conn:
        assert {e.key: content(conn, e) for e in untouched} == before_other  # nothing else touched


def test_compliance_and_the_sensor_follow_the_rules(forge, policy):
    """After the passes above nothing is overdue by the rules; a month later the 70- and 80-day rules have
    days due, which the sensor's probe (rows due at its tick) finds."""
    from forge_assets.quality.compliance import retention_compliance

    job = policy.effective_entries("forge", "main_job")[0]
    assert job.grace_days == 1 and job.shortest_keep_days == 60
    later = LATER + timedelta(days=30)
    with conn_to(forge, "forge") as conn:
        assert retention_compliance(conn, job, LATER).passed
        outcome = retention_compliance(conn, job, later)
        assert not outcome.passed and outcome.failing > 0
        due = days_holding_rows(conn, job, oldest_day(conn, job), last_overdue_day(job, later), 100, later)
    assert due and all(d <= last_overdue_day(job, later) for d in due)
    assert any(d <= keep_cutoff(70, later).date() for d in due)  # days the longer rules made wait are due now


def test_rules_run_as_forge_retention_with_the_grants_the_policy_adds(forge, policy, monkeypatch):
    """A rule on the job's template reads main_jobtemplate: forge_retention is refused (one message, nothing
    written) until `grants` under the policy gives it SELECT (id, name) there."""
    now = LATER + timedelta(days=30)
    login = f"fa_retention_{uuid.uuid4().hex[:6]}"
    with conn_to(forge, "forge", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE forge_retention").format(sql.Identifier(login)))
    try:
        job = policy.effective_entries("forge", "main_job")[0]
        with conn_to(forge, "forge") as admin:  # the probes run as forge_reader, which reads every table
            (day,) = days_holding_rows(admin, job, oldest_day(admin, job), last_overdue_day(job, now), 1, now)
        with conn_to(forge, "forge", user=login) as conn:
            for entry in policy.effective_entries("forge"):  # the tables referencing main_job go first
                if entry.key in ("forge.main_jobhostsummary", "forge.main_driftdetection",
                                 "forge.main_hostfactsnapshot"):
                    for each in overdue_days(conn, entry, now):
                        archive_day(conn, entry, each, forge.lake_root, now)
            with pytest.raises(PreflightError, match=r"lacks SELECT \(id, name\) on main_jobtemplate"):
                archive_day(conn, job, day, forge.lake_root, now)
        monkeypatch.setenv("FORGE_POLICY", str(policy.path))
        with conn_to(forge, "forge") as admin:
            apply_grants(admin, "forge")
        with conn_to(forge, "forge", user=login) as conn:
            assert archive_day(conn, job, day, forge.lake_root, now).rows > 0
    finally:
        with conn_to(forge, "forge", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}; DROP ROLE {}").format(sql.Identifier(login), sql.Identifier(login)))


def test_policy_command_shows_where_each_value_came_from(policy):
    done = subprocess.run([CLI, "policy"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FORGE_POLICY": str(policy.path)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    source = policy.path.read_text().splitlines()
    main_job = source.index("  main_job:") + 1  # 1-based line numbers of the file

    assert f"with {policy.path}" in lines[0]
    job = lines.index("  forge.main_job [on]")
    keep, strategy, rule = lines[job + 2], lines[job + 3], lines[job + 7]
    assert keep.split()[:2] == ["keep_days", "60"] and keep.endswith(f"{policy.path}:{main_job + 1}")
    assert strategy.split()[:2] == ["strategy", "archive"] and strategy.endswith("built-in")
    assert "job.status in (failed, error): keep 80 days" in rule and rule.endswith(f"{policy.path}:{main_job + 3}")
    grace = source.index("  grace_days: 1") + 1
    assert any(line.split()[:2] == ["grace_days", "1"] and line.endswith(f"{policy.path}:{grace}") for line in lines)
    assert any(line.split()[:3] == ["rollup_schedule", "00:30", "UTC"] and line.endswith("built-in") for line in lines)


BAD = {
    "does not parse": ("forge:\n  main_job: {keep_days: 30\n", "does not parse as YAML"),
    "not a mapping": ("- forge\n", "(top level): must be a mapping"),
    "unknown source": ("forgee: {}\n", "forgee: unknown source"),
    "unknown table": ("forge:\n  main_jobs: {keep_days: 3}\n", "forge.main_jobs: unknown table or entry"),
    "unknown setting": ("forge:\n  main_job: {keep: 3}\n", "forge.main_job.keep: unknown setting"),
    "unknown column": ("forge:\n  main_job:\n    rules: [{where: {colour: red}, keep_days: 9}]\n",
                       "forge.main_job.rules[0].where.colour: unknown column of main_job"),
    "value type": ("forge:\n  main_job:\n    rules: [{where: {forks: [many]}, keep_days: 9}]\n",
                   "where.forks: forks is an integer column: text 'many' is not a whole number"),
    "nested value": ("forge:\n  main_job:\n    rules: [{where: {status: [[failed]]}, keep_days: 9}]\n",
                     "where.status: values are single values or a flat list"),
    "column type": ("forge:\n  main_job:\n    rules: [{where: {elapsed: 3}, keep_days: 9}]\n",
                    "elapsed is of type numeric(12, 3)"),
    "wrong type": ("forge:\n  main_job: {keep_days: ninety}\n", "forge.main_job.keep_days: must be a whole number"),
    "keep_days < 1": ("forge:\n  main_job: {keep_days: 0}\n", "forge.main_job.keep_days: must be between 1 and"),
    "rule keep_days": ("forge:\n  main_job:\n    rules: [{where: {status: failed}, keep_days: -5}]\n",
                       "rules[0].keep_days: must be between 1 and"),
    "unknown value": ("forge:\n  main_job:\n    rules: [{where: {status: faild}, keep_days: 9}]\n",
                      "unknown value(s) 'faild' of status"),
    "unfinished work": ("forge:\n  main_jobevent:\n    rules: [{where: {status: [failed, running]}, keep_days: 9}]\n",
                        "where.status: would archive unfinished work (running)"),
    "unfinished alert": ("pulse:\n  fleet_alert:\n    rules: [{where: {status: OPEN}, keep_days: 9}]\n",
                         "would archive unfinished work (OPEN)"),
    "unfinished queue element": ("openorchestrator:\n  Queues_finished:\n    rules: [{where: {status: IN_PROGRESS}, "
                                 "keep_days: 9}]\n", "never reach it"),
    "duplicate key": ("forge:\n  main_job: {keep_days: 30}\n  main_job: {keep_days: 40}\n", "given twice"),
    "bad strategy": ("orchestry:\n  events: {strategy: drop_partition}\n", "events is not a partitioned table"),
    "keep_last elsewhere": ("forge:\n  main_jobevent: {keep_last: 3}\n", "applies to forge.main_job only"),
    "sensitive key": ("forge:\n  main_job: {sensitive: [created]}\n", "cannot be left out of the archive"),
    "child outlives parent": ("forge:\n  main_jobhostsummary: {keep_days: 400}\n",
                              "forge.main_jobhostsummary: keeps rows longer than forge.main_job"),
    "child switched off": ("forge:\n  main_jobhostsummary: {enabled: false}\n",
                           "forge.main_jobhostsummary.enabled: forge.main_job references its rows"),
    "schedule": ("operations: {rollup_schedule: '24:00'}\n", "operations.rollup_schedule: must be a UTC time"),
    "operation": ("operations: {sensor_max_runs_per_tick: 0}\n", "operations.sensor_max_runs_per_tick: must be"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_every_bad_policy_is_one_line_and_exit_2_before_anything_runs(case, seeded, settings, tmp_path,
                                                                       monkeypatch, capsys):
    text, expected = BAD[case]
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert len(raised.value.problems) == 1 and expected in raised.value.problems[0], raised.value.problems
    assert raised.value.problems[0].startswith(f"{path}:")

    entry = entries("orchestry", "events")[0]
    with conn_to(settings, "orchestry") as conn:
        before = content(conn, entry), conn.execute("SELECT count(*) FROM forge_retention.archive_ledger").fetchone()
    monkeypatch.setenv("FORGE_POLICY", str(path))
    day = (NOW - timedelta(days=400)).date().isoformat()
    assert main(["archive", "--source", "orchestry", "--until", day]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and "Traceback" not in err[0]
    with conn_to(settings, "orchestry") as conn:
        after = content(conn, entry), conn.execute("SELECT count(*) FROM forge_retention.archive_ledger").fetchone()
    assert after == before


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("forge:\n  main_job: {keep_days: 0, strategy: shred}\nnope: 1\n"
                    "operations: {grace_days: -1}\n")
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert [p.split(": ", 2)[1] for p in raised.value.problems] == [
        "forge.main_job.keep_days", "forge.main_job.strategy", "nope", "operations.grace_days"]
    assert [p.split(":")[1] for p in raised.value.problems] == ["2", "2", "3", "4"]


def test_a_missing_file_and_the_built_in_default(tmp_path):
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        load_policy(tmp_path / "nowhere.yaml")
    built_in = load_policy(None)
    assert built_in.effective_entries() == list(CATALOG)
    assert all(built_in.origin(f"{e.key}.keep_days") == "built-in" for e in CATALOG)


def test_switches_sensitive_columns_and_operations(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("goforge: {enabled: false, purge: true}\n"
                    "orchestry:\n  metrics_app: {enabled: false}\n  events: {sensitive: [message], keep_days: 45}\n"
                    "operations: {rollup_schedule: 01:15, checks_schedule: '03:05', sensor_interval_seconds: 600}\n")
    policy = load_policy(path)
    assert policy.effective_entries("goforge") == [] and policy.sources["goforge"].purge is True
    assert [e.entry_name for e in policy.effective_entries("orchestry")] == ["events", "metrics_instance"]
    with pytest.raises(CatalogError, match="switched off by the policy file"):
        policy.effective_entries("orchestry", "metrics_app")
    events = policy.effective_entries("orchestry", "events")[0]
    assert events.keep_days == 45 and "message" in events.sensitive_columns
    assert "message" in policy.sensitive_columns("orchestry", "events")
    ops = policy.operations
    assert (ops.rollup_schedule.hour, ops.rollup_schedule.minute) == (1, 15)  # unquoted 01:15 is not 75
    assert (ops.checks_schedule.hour, ops.sensor_interval_seconds, ops.grace_days) == (3, 600, 2)


def test_the_readme_example_is_a_valid_policy(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Retention policy file", 1)[1]
    path = tmp_path / "policy.yaml"
    path.write_text(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    policy = load_policy(path)
    job = policy.effective_entries("forge", "main_job")[0]
    assert [r.keep_days for r in job.rules] == [365, 730, 180] and job.keep_last == 5
    assert policy.sources["orchestry"].purge is True and not policy.sources["goforge"].enabled


def test_knobs_come_from_the_environment_else_the_policy_file_else_built_in(tmp_path, monkeypatch):
    """One function gives every knob (effective.py): environment variable, else policy file, else built-in; the
    sensor and `forge-assets policy` both follow it."""
    path = tmp_path / "policy.yaml"
    path.write_text("operations:\n  sensor_max_runs_per_tick: 4\n  restore_hold_days: 3\n  retry_backoff: 10m,2h\n"
                    "  sensor_interval_seconds: 600\n")
    policy = load_policy(path)
    environment = {"FORGE_SENSOR_MAX_RUNS": "9"}
    ops = effective_operations(environment, policy)
    assert (ops.sensor_max_runs, ops.restore_hold_days, ops.archive_days_per_run) == (9, 3, 31)
    assert ops.retry_backoff == (timedelta(minutes=10), timedelta(hours=2))
    origins = {s.name: (s.shown, s.origin) for s in operation_settings(environment, policy)}
    assert origins["sensor_max_runs_per_tick"] == ("9", "FORGE_SENSOR_MAX_RUNS (environment)")
    assert origins["restore_hold_days"] == ("3", f"{path}:3")
    assert origins["retry_backoff"] == ("10m,2h", f"{path}:4")
    assert origins["archive_days_per_run"] == ("31", "built-in")
    with pytest.raises(ConfigError, match="FORGE_RESTORE_HOLD_DAYS must be a whole number"):
        effective_operations({"FORGE_RESTORE_HOLD_DAYS": "soon"}, policy)

    monkeypatch.setenv("FORGE_POLICY", str(path))
    assert build_retention_sensor().minimum_interval_seconds == 600  # the file's, no longer overridden
    monkeypatch.setenv("FORGE_SENSOR_INTERVAL_SECONDS", "120")
    assert build_retention_sensor().minimum_interval_seconds == 120
    shown = subprocess.run([CLI, "policy"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "FORGE_SENSOR_MAX_RUNS": "9"})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any(line.split()[:2] == ["sensor_interval_seconds", "120"]
               and line.endswith("FORGE_SENSOR_INTERVAL_SECONDS (environment)") for line in lines)
    assert any(line.split()[:2] == ["restore_hold_days", "3"] and line.endswith(f"{path}:3") for line in lines)


def test_purge_opt_in_from_the_policy_file(tmp_path, seeded, settings, monkeypatch, capsys):
    """A source's `purge:` in the policy file turns purging on or off when FORGE_PURGE is not set; FORGE_PURGE,
    when set, wins; neither: on for the embedded demo only."""
    path = tmp_path / "policy.yaml"
    path.write_text("forge: {purge: true}\ngoforge: {purge: false}\n")
    policy = load_policy(path)
    own = {"FORGE_HOME": str(tmp_path), "FORGE_FORGE_URL": "postgresql://r@db.internal/forge",
           "FORGE_GOFORGE_URL": "postgresql://r@db.internal/goforge"}
    production = load_settings(own)
    assert purge_setting(production, "forge", policy) == (True, f"{path}:1")
    assert purge_setting(production, "goforge", policy) == (False, f"{path}:2")
    assert purge_setting(production, "forge", load_policy(None))[0] is False  # built-in: off until opted in
    explicit = load_settings({**own, "FORGE_PURGE": "goforge"})
    assert purge_setting(explicit, "forge", policy) == (False, "FORGE_PURGE (environment)")
    assert purges(explicit, "goforge", policy)
    with pytest.raises(ConfigError, match=f"purging is off for goforge \\({path}:2\\)"):
        require_purge(production, "goforge", policy)
    demo = load_settings({"FORGE_HOME": str(tmp_path)})
    assert purge_setting(demo, "goforge", policy)[0] is False and purges(demo, "orchestry", policy)

    # The CLI follows the file: a source it switches purging off for is refused in one line, nothing moves.
    entry = entries("orchestry", "events")[0]
    path.write_text("orchestry: {purge: false}\n")
    monkeypatch.setenv("FORGE_POLICY", str(path))
    monkeypatch.delenv("FORGE_PURGE", raising=False)
    with conn_to(settings, "orchestry") as conn:
        before = content(conn, entry)
    assert main(["archive", "--source", "orchestry", "--until", (NOW - timedelta(days=400)).date().isoformat()]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "purging is off for orchestry" in err[0], err
    with conn_to(settings, "orchestry") as conn:
        assert content(conn, entry) == before


def test_unfinished_work_is_one_list_the_catalogs():
    """The policy checks rules against the catalog's unfinished predicates (no copy of its own): each entry's
    own, and those that go through a parent (a job's status, for its events and host summaries)."""
    assert unfinished_values("forge", "main_job", "status") == UNFINISHED_JOB
    assert unfinished_values("pulse", "fleet_alert", "status") == ("OPEN", "ACKNOWLEDGED")
    assert unfinished_values("goforge", "deployments", "status") == DEPLOYMENT_IN_PROGRESS
    assert unfinished_values("orchestry", "events", "severity") == ()
    policy_source = (Path(__file__).resolve().parents[1] / "forge_assets" / "retention" / "policy.py").read_text()
    assert "UNFINISHED_JOB" not in policy_source and "'running'" not in policy_source

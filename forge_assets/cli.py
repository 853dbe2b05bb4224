"""forge-assets: the command line (migrate, seed, demo, archive, restore, grants, doctor, policy, lake, dev,
docs, server)."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import psycopg

from forge_assets.bi import LakeDatabaseError
from forge_assets.config import SOURCES, ConfigError, Settings, load_settings
from forge_assets.conninfo import ConninfoError, describe, redact
from forge_assets.db import DatabaseUnavailable, server_conninfo, source_connection
from forge_assets.effective import describe_settings, effective_operations
from forge_assets.embedded import stop_embedded_server
from forge_assets.lake import LakePathError, ObjectPath
from forge_assets.migrate import OWN_SCHEMA, MigrationError, run_migrations
from forge_assets.retention.backlog import archive_source, failure_message, print_archive_reports
from forge_assets.retention.catalog import CatalogError
from forge_assets.retention.engine import RetentionError, restore
from forge_assets.retention.ownership import LakeOwnershipError
from forge_assets.retention.policy import PolicyError, current_policy, describe_policy, effective_entries
from forge_assets.retention.preflight import PreflightError, check_restore
from forge_assets.retention.stream import ExportError, skip_pandas_probe
from forge_assets.roles import grant_statements, ownership_note
from forge_assets.seed.common import SeedPlan
from forge_assets.seed.load import SeedError, seed_sources

_KNOWN_ERRORS = (ConfigError, ConninfoError, DatabaseUnavailable, MigrationError, SeedError, CatalogError, RetentionError,
                 PreflightError, LakePathError, LakeDatabaseError, LakeOwnershipError)
_DAY_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
DEMO_DAYS = 100


def _positive_int(limit: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"must be between 1 and {limit} (got {value})")
        return value

    return parse


def _whole_days(text: str) -> int:
    if not text.isdigit() or int(text) > 3_650:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days from 0 to 3650")
    return int(text)


def _day(text: str) -> date:
    if not _DAY_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"malformed day {text!r}: expected YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"malformed day {text!r}: {exc}") from None


def _table_name(text: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", text):
        raise argparse.ArgumentTypeError(f"{text!r}: a new table's name is lower-case letters, digits and underscores")
    return text


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 100 (got {value})")
    return value


def _anchor(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forge-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    m = commands.add_parser("migrate", help="apply pending migrations to the source databases")
    m.add_argument("--source", action="append", choices=SOURCES, help="only this source (repeatable)")
    m.add_argument("--own-only", action="store_true",
                   help=f"apply only forge_assets' own {OWN_SCHEMA} schema (for real, application-owned sources)")

    s = commands.add_parser("seed", help="load realistic, deterministic data into the stand-in databases")
    _seed_options(s, default_days=30)
    s.add_argument("--source", action="append", choices=SOURCES, help="only this source (repeatable)")
    s.add_argument("--reset", action="store_true", help="replace data already in the stand-in databases")

    d = commands.add_parser("demo", help="start PostgreSQL, migrate, seed, materialize everything, summarise")
    _seed_options(d, default_days=DEMO_DAYS)

    a = commands.add_parser("archive", help="archive to Parquet and purge overdue days of catalog tables")
    a.add_argument("--source", required=True, choices=SOURCES)
    a.add_argument("--table", help="one catalog table or entry (default: every entry of the source)")
    when = a.add_mutually_exclusive_group(required=True)
    when.add_argument("--day", type=_day, help="one UTC day, YYYY-MM-DD")
    when.add_argument("--until", type=_day, help="every overdue day up to this one")
    a.add_argument("--dry-run", action="store_true", help="report what would move; change nothing")
    a.add_argument("--wait", action="store_true", help="wait for a concurrent run of the same day instead of skipping")

    r = commands.add_parser("restore", help="load an archived day back into its table")
    r.add_argument("--source", required=True, choices=SOURCES)
    r.add_argument("--table", required=True, help="catalog table or entry")
    r.add_argument("--day", type=_day, required=True, help="UTC day, YYYY-MM-DD")
    r.add_argument("--into", metavar="NEW_TABLE", type=_table_name,
                   help="load the files into a new table made from their schema instead of the live table "
                        "(the ledger is not changed); for a table whose schema has moved on")
    r.add_argument("--hold-days", type=_whole_days, metavar="N",
                   help="keep the restored day out of retention for N days (default FORGE_RESTORE_HOLD_DAYS, 7; "
                        "0: archived again on the next run)")

    g = commands.add_parser("grants", help="print the GRANTs that give forge_reader and forge_retention their rights "
                                           "on a source's tables (for its owner to run; `migrate` applies them "
                                           "to the stand-ins)")
    g.add_argument("--source", required=True, choices=SOURCES)

    lk = commands.add_parser("lake", help="write a DuckDB file of typed views over the lake (rollups, archives, "
                                          "history with the live rows, the seed questions as table macros)")
    lk.add_argument("--output", type=Path, default=None, help="the DuckDB file (default: <lake root>/lake.duckdb)")
    lk.add_argument("--no-history", action="store_true", help="no history views (do not connect to the sources)")

    doc = commands.add_parser("doctor", help="connect as each configured login and say, per source and table, what "
                                              "works and the GRANT that would fix what does not")
    doc.add_argument("--source", action="append", choices=SOURCES, help="only this source (repeatable)")

    commands.add_parser("policy", help="print the effective retention policy (the built-in catalog and the "
                                       "FORGE_POLICY file) and where each value comes from")
    commands.add_parser("dev", help="open the Dagster UI (webserver and daemon); other arguments go to `dagster dev`")
    commands.add_parser("docs", help="regenerate docs/rollups.md, docs/retention.md and docs/checks.md from the code")

    server = commands.add_parser("server", help="the embedded PostgreSQL server under FORGE_HOME")
    server.add_argument("action", choices=["start", "stop", "status"])
    return parser


def _seed_options(parser: argparse.ArgumentParser, default_days: int) -> None:
    parser.add_argument("--days", type=_positive_int(3650), default=default_days,
                        help=f"whole UTC days of history up to now (default {default_days})")
    parser.add_argument("--scale", type=_scale, default=1.0, help="volume multiplier (default 1)")
    parser.add_argument("--seed", type=int, default=42, help="random seed: same seed and anchor, same data")
    parser.add_argument("--anchor", type=_anchor, default=None, help="end of the history (default: now)")
    parser.add_argument("--dirty", action="store_true", help="inject the documented constraint violations")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `forge-assets` console script."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "dev":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.dagster_args = extra
    try:
        settings = load_settings()
        current_policy()  # a bad policy file stops every command before anything runs
        return COMMANDS[args.command](settings, args) or 0
    except PolicyError as exc:
        for problem in exc.problems:
            print(f"forge-assets: error: {problem}", file=sys.stderr)
        return 2
    except _KNOWN_ERRORS as exc:
        print(f"forge-assets: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except OSError as exc:  # the lake's file system (full, read-only, gone)
        print(f"forge-assets: error: the lake failed ({' '.join(redact(str(exc)).split())}); nothing was deleted",
              file=sys.stderr)
        return 2
    except (psycopg.Error, ExportError) as exc:
        text = " ".join(redact(str(exc)).split()) or type(exc).__name__
        print(f"forge-assets: error: PostgreSQL refused ({text}); nothing was changed", file=sys.stderr)
        return 2


def _grants(settings: Settings, args) -> None:
    with source_connection(settings, args.source) as conn:
        statements = [f"{statement.as_string(conn)};" for statement in grant_statements(conn, args.source)]
    print(f"-- forge-assets grants --source {args.source}: run as the tables' owner, in one transaction.")
    print("-- Logins: CREATE ROLE <name> LOGIN PASSWORD '...' IN ROLE forge_reader (FORGE_<SOURCE>_URL),")
    print("-- forge_retention (FORGE_<SOURCE>_RETENTION_URL), forge_owner (FORGE_<SOURCE>_OWNER_URL).")
    print("\n".join(["BEGIN;", *statements, *ownership_note(args.source), "COMMIT;"]))


def _migrate(settings: Settings, args) -> None:
    run_migrations(settings, tuple(args.source or settings.sources), args.own_only)


def _plan(args) -> SeedPlan:
    anchor = args.anchor or datetime.now(timezone.utc).replace(second=0, microsecond=0)
    return SeedPlan(days=args.days, scale=args.scale, seed=args.seed, anchor=anchor, dirty=args.dirty)


def _seed(settings: Settings, args) -> None:
    plan = _plan(args)
    print(f"seeding {plan.days} days up to {plan.anchor.isoformat()} (scale {plan.scale}, seed {plan.seed}"
          f"{', dirty' if plan.dirty else ''})")
    for report in seed_sources(settings, plan, tuple(args.source or settings.sources), reset=args.reset):
        print(f"\n{report.source}: {sum(report.counts.values()):,} rows in {report.seconds:.1f} s")
        for table, count in report.counts.items():
            print(f"  {table:40s} {count:>12,}")


def _archive(settings: Settings, args) -> int:
    skip_pandas_probe()
    reports = archive_source(settings, args.source, datetime.now(timezone.utc), args.table, args.day, args.until,
                             args.dry_run, args.wait)
    print_archive_reports(reports, args.dry_run)
    if not args.dry_run:
        from forge_assets.assets.ledger import report_to_dagster

        report_to_dagster(settings, reports, "cli")
    if any(r.failed for r in reports):
        return 2
    return 1 if any(r.deferred for r in reports) and args.table else 0


def _restore(settings: Settings, args) -> None:
    if args.into and args.hold_days is not None:
        raise ConfigError("--hold-days holds a day restored into its live table; --into changes no retention")
    skip_pandas_probe()
    hold_days = effective_operations().restore_hold_days if args.hold_days is None else args.hold_days
    (entry,) = effective_entries(args.source, args.table, include_disabled=True)[:1]
    with source_connection(settings, args.source, "owner") as conn:
        if not args.into:  # a new table needs CREATE on the schema instead: PostgreSQL says so if missing
            check_restore(conn, entry)
        try:
            result = restore(conn, entry, args.day, settings.lake_root, into=args.into, hold_days=hold_days)
        except (OSError, psycopg.Error) as exc:
            if isinstance(exc, psycopg.OperationalError) and conn.broken:
                raise
            raise RetentionError(failure_message(entry, exc)) from None
    line = f"{entry.key} {args.day}: {result.rows:,} rows restored into {result.table} from {result.files} files"
    if result.present:
        line += f"; {result.present:,} identical rows were already there and were not loaded again"
    if result.skipped_columns:
        line += (f"; column(s) {', '.join(result.skipped_columns)} not loaded ({result.table} no longer takes them: "
                 "their values stay in the archive files, which stay ledgered)")
    if not args.into:
        line += (f"; on hold until {result.held_until:%Y-%m-%d %H:%M} UTC ({hold_days} days): no archive run takes "
                 "the day before" if result.held_until else "; no hold: the next archive run takes the day again")
    print(line)
    from forge_assets.assets.ledger import report_restore

    report_restore(settings, entry, args.day, result)


def _policy(settings: Settings, args) -> None:
    policy = current_policy()
    print(describe_policy(policy, describe_settings(settings, policy)), end="")


def _demo(settings: Settings, args) -> None:
    from forge_assets.demo import run_demo

    run_demo(settings, _plan(args))


def _dev(settings: Settings, args) -> None:
    from forge_assets.instance import dagster_environment

    if settings.embedded:  # start it once, before the webserver and daemon both try; its stand-ins migrated
        run_migrations(settings, tuple(s for s in settings.sources if not settings.has_own_database(s)))
    env = dagster_environment(settings)
    print(f"Dagster home: {env['DAGSTER_HOME']}")
    dagster = str(Path(sys.executable).with_name("dagster"))
    # A process started in the background by a non-interactive shell inherits SIGINT ignored, and `dagster dev`
    # maps SIGTERM to SIGINT's handler: both would be ignored and only SIGKILL would stop it. Default
    # dispositions survive exec, so Python installs its KeyboardInterrupt handler and a stop is clean.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.execvpe(dagster, [dagster, "dev", "-m", "forge_assets.definitions", *args.dagster_args], env)


def _doctor(settings: Settings, args) -> int:
    from forge_assets.doctor import diagnose

    findings = [f for source in (args.source or settings.sources) for f in diagnose(settings, source)]
    for finding in findings:
        print(finding.line())
    missing = sum(not f.ok for f in findings)
    print(f"{len(findings)} checks: {len(findings) - missing} ok, {missing} missing")
    return 1 if missing else 0


def _server(settings: Settings, args) -> None:
    if not settings.embedded and args.action != "status":
        raise ConfigError("FORGE_PG_URL (or every FORGE_<SOURCE>_URL) is set: there is no embedded server to manage")
    if args.action == "start":
        print(f"embedded PostgreSQL running: {describe(server_conninfo(settings))}")
    elif args.action == "stop":
        print("stopped" if stop_embedded_server(settings.pgdata) else "not running")
    else:
        for source in settings.sources:
            started = time.perf_counter()
            try:
                with source_connection(settings, source) as conn:
                    version = conn.execute("SHOW server_version").fetchone()[0]
                print(f"{source}: PostgreSQL {version}, answered in {time.perf_counter() - started:.2f} s")
            except DatabaseUnavailable as exc:
                print(f"{source}: {exc}")


def _lake(settings: Settings, args) -> None:
    from forge_assets.bi.lakedb import build_lake_database
    from forge_assets.db import source_conninfo

    live = {} if args.no_history else {source: source_conninfo(settings, source) for source in settings.sources}
    output = args.output or (None if isinstance(settings.lake_root, ObjectPath) else settings.lake_root / "lake.duckdb")
    report = build_lake_database(settings.lake_root, output, live)
    print(f"wrote {report.path}: {len(report.views)} views, {len(report.macros)} question macros "
          f"({', '.join(report.macros) or 'none'})")
    for note in report.notes:
        print(f"  {note}")
    if report.unread:
        print(report.unread_line())


def _docs(settings: Settings, args) -> None:
    from forge_assets.docs import checks_reference, retention_reference, rollup_reference
    from forge_assets.sql_files import sql_root

    docs = sql_root().parent / "docs"
    docs.mkdir(exist_ok=True)
    for name, text in (("rollups.md", rollup_reference()), ("retention.md", retention_reference()),
                       ("checks.md", checks_reference())):
        (docs / name).write_text(text, encoding="utf-8")
        print(f"wrote {docs / name}")


COMMANDS = {"migrate": _migrate, "seed": _seed, "demo": _demo, "dev": _dev, "server": _server, "docs": _docs,
            "archive": _archive, "restore": _restore, "grants": _grants, "doctor": _doctor, "lake": _lake,
            "policy": _policy}

if __name__ == "__main__":
    sys.exit(main())

"""Archiving many (entry, day) pairs in catalog order: what the CLI and the demo run."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import date, datetime

import psycopg

from forge_assets.config import Settings
from forge_assets.conninfo import redact
from forge_assets.db import source_connection
from forge_assets.effective import require_purge
from forge_assets.lake import LakePathError
from forge_assets.retention.catalog import CatalogError, TableEntry, validate
from forge_assets.retention.engine import (
    FIRST_DAY,
    LAST_DAY,
    DayResult,
    NotOverdue,
    RetentionError,
    archive_day,
    days_holding_rows,
    dry_run_day,
    last_overdue_day,
    undated_rows,
)
from forge_assets.retention.policy import current_policy
from forge_assets.retention.preflight import PreflightError
from forge_assets.retention.stream import ExportError


@dataclass
class EntryReport:
    """Everything one entry's days came to: results, days deferred (a later run retries them) and the
    failure that stopped the entry (nothing of that day changed)."""

    entry: TableEntry
    results: list[DayResult] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    failed: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.results)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.results)

    @property
    def files(self) -> int:
        return sum(len(r.files) for r in self.results)


def failure_message(entry: TableEntry, exc: BaseException) -> str:
    """One line for an error that stopped an entry's run, whatever raised it."""
    text = " ".join(redact(str(exc)).split()) or type(exc).__name__
    if isinstance(exc, (CatalogError, PreflightError, RetentionError, LakePathError)):
        return text
    if isinstance(exc, OSError):
        return f"{entry.key}: the lake failed ({text}); nothing was deleted"
    if isinstance(exc, ExportError):
        return f"{entry.key}: the export failed ({text}); nothing was deleted"
    return f"{entry.key}: PostgreSQL refused ({text.split(' LINE ')[0]}); nothing was deleted"


def archive_source(settings: Settings, source: str, now: datetime, table: str | None = None,
                   day: date | None = None, until: date | None = None, dry_run: bool = False,
                   wait: bool = False) -> list[EntryReport]:
    """Archive (or dry-run) one day, or every overdue day up to `until` that holds rows, of a source's
    catalog entries.

    Entries run in catalog order (children before the rows they reference). A day that cannot be purged
    yet (rows still referenced, a lock not granted, or not overdue when a whole source is asked for) is
    reported as deferred; an entry that cannot run at all (its table missing, privileges, the lake) is
    reported as failed and the other entries still run.
    """
    policy = current_policy()
    selected = policy.effective_entries(source, table)
    if not policy.sources[source].enabled:
        raise CatalogError(f"{source} is switched off by the policy file ({policy.origin(source + '.enabled')})")
    if not dry_run:
        require_purge(settings, source, policy)
    reports = []
    with source_connection(settings, source, "reader" if dry_run else "retention") as conn:
        for entry in selected:
            report = EntryReport(entry)
            reports.append(report)
            try:
                validate(conn, [entry])
                conn.rollback()
                if day:
                    days = [day]
                else:
                    last = min(last_overdue_day(entry, now), until or LAST_DAY)
                    days = days_holding_rows(conn, entry, FIRST_DAY, last)
                    undated = undated_rows(conn, entry)
                    if undated:
                        report.notes.append(f"{undated} rows of {entry.table} have a {entry.time_column} before year 1 "
                                            "(or -infinity): they have no UTC day and stay in PostgreSQL")
                for each in days:
                    try:
                        if dry_run:
                            report.results.append(dry_run_day(conn, entry, each, now))
                        else:
                            result = archive_day(conn, entry, each, settings.lake_root, now, wait=wait)
                            report.results.append(result)
                            if result.skipped:
                                report.deferred.append(result.skipped)
                            if result.fallback and f"{each}: {result.fallback}" not in report.notes:
                                report.notes.append(f"{each}: {result.fallback}")
                    except NotOverdue as exc:
                        if table:
                            raise
                        report.deferred.append(str(exc))
                    except RetentionError as exc:  # rows still referenced, a lock not granted, ...
                        report.deferred.append(str(exc))
            except NotOverdue:
                raise
            except (CatalogError, PreflightError, OSError, ExportError, LakePathError, psycopg.Error) as exc:
                if conn.broken:
                    raise  # the server went away: source_connection says so in one line
                report.failed = failure_message(entry, exc)
                conn.rollback()
    return reports


def print_archive_reports(reports: list[EntryReport], dry_run: bool = False) -> None:
    """One line per entry: days, rows, bytes (in PostgreSQL for a dry run), files, and deferred days; an
    entry that failed gets one line on stderr instead."""
    verb = "would move" if dry_run else "moved"
    for report in reports:
        if report.failed and not report.results:
            print(f"forge-assets: error: {report.failed}", file=sys.stderr)
            continue
        days = sum(1 for r in report.results if r.rows)
        line = f"{report.entry.key:45s} {verb} {report.rows:>10,} rows {report.bytes:>13,} bytes in {days:>3} days"
        if not dry_run:
            line += f", {report.files} files"
        print(line)
        for reason in report.deferred:
            print(f"    deferred: {reason}")
        for note in report.notes:
            print(f"    note: {note}")
        if report.failed:
            print(f"forge-assets: error: {report.failed}", file=sys.stderr)

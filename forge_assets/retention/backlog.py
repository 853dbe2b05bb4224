"""Archiving many (entry, day) pairs in catalog order: what the CLI and the demo run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from forge_assets.config import Settings
from forge_assets.db import source_connection
from forge_assets.retention.catalog import CatalogError, TableEntry, validate
from forge_assets.retention.engine import (
    DayResult,
    NotOverdue,
    RetentionError,
    archive_day,
    dry_run_day,
    overdue_days,
)
from forge_assets.retention.policy import current_policy


@dataclass
class EntryReport:
    """Everything one entry's days came to."""

    entry: TableEntry
    results: list[DayResult] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.results)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.results)

    @property
    def files(self) -> int:
        return sum(len(r.files) for r in self.results)


def archive_source(settings: Settings, source: str, now: datetime, table: str | None = None,
                   day: date | None = None, until: date | None = None, dry_run: bool = False,
                   wait: bool = False) -> list[EntryReport]:
    """Archive (or dry-run) one day, or every overdue day up to `until`, of a source's catalog entries.

    Entries run in catalog order (children before the rows they reference). A day that cannot be purged
    yet (rows still referenced, or not overdue when a whole source is asked for) is reported as deferred.
    """
    policy = current_policy()
    selected = policy.effective_entries(source, table)
    if not policy.sources[source].enabled:
        raise CatalogError(f"{source} is switched off by the policy file ({policy.origin(source + '.enabled')})")
    if not dry_run:
        settings.require_purge(source)
    reports = []
    with source_connection(settings, source, "reader" if dry_run else "retention") as conn:
        validate(conn, selected)
        conn.rollback()
        for entry in selected:
            report = EntryReport(entry)
            days = [day] if day else overdue_days(conn, entry, now, until)
            for each in days:
                try:
                    if dry_run:
                        report.results.append(dry_run_day(conn, entry, each, now))
                    else:
                        report.results.append(archive_day(conn, entry, each, settings.lake_root, now, wait=wait))
                except NotOverdue as exc:
                    if table:
                        raise
                    report.deferred.append(str(exc))
                except RetentionError as exc:
                    report.deferred.append(str(exc))
            reports.append(report)
    return reports


def print_archive_reports(reports: list[EntryReport], dry_run: bool = False) -> None:
    """One line per entry: days, rows, bytes (in PostgreSQL for a dry run), files, and deferred days."""
    verb = "would move" if dry_run else "moved"
    for report in reports:
        days = sum(1 for r in report.results if r.rows)
        line = f"{report.entry.key:45s} {verb} {report.rows:>10,} rows {report.bytes:>13,} bytes in {days:>3} days"
        if not dry_run:
            line += f", {report.files} files"
        print(line)
        for reason in report.deferred:
            print(f"    deferred: {reason}")

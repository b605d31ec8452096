"""Importing the institution applications a district uploads: 100,000 rows in a few seconds.

The target is 100,000 applications in a few seconds (LIMITS.md), so an application file is
checked column by column (tasks.intake.application_rows), against the database in bulk
(tasks.intake.application_checks) and written in bulk in one transaction (tasks.intake.application_writes): rows
by COPY on PostgreSQL and the driver's executemany on SQLite, new ids read back by range, receipts
written by the database (INSERT … SELECT). This module is the entry point and the order of steps.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import Engine

from core.bulk import refresh_statistics
from core.collector import collector_paused
from core.db import serialize, transaction
from models.clock import Clock
from models.enrollment import Application, Institution
from models.program_definition import PhaseName
from models.windows import require_open
from tasks.intake.application_checks import cross_checks
from tasks.intake.application_rows import application_columns, parse_applications
from tasks.intake.application_writes import (
    audit_submissions,
    by_district,
    enqueue_receipts,
    update_contacts,
    write_applications,
    write_institutions,
)
from tasks.intake.import_files import (
    HEADER_COLUMN,
    ImportResult,
    load_program,
    lossy_errors,
    previous_import,
    record_import,
    set_created,
    unnamed_cells,
    without_shadowed,
)
from tasks.intake.spreadsheets import ImportRejected, RowError, parse_upload, read_upload

__all__ = [
    "import_applications",
]


def import_applications(
    engine: Engine,
    program_slug: str,
    path: Path,
    *,
    clock: Clock,
    actor: str = "system",
) -> ImportResult:
    """Import institution applications (001 att.1 + att.2 fields) as submitted applications, one per row.

    Districts collect the forms and upload them as one sheet (000 §五(一)3), and they resend the
    sheet as it grows: rows of institutions already in the program are skipped, not errors, and a
    rejected or withdrawn institution gets a new attempt into a later batch. Accepted during the
    enrollment window and afterwards during continuous review (持续推进).
    """
    # A 100,000-row file makes millions of short-lived containers (core/collector.py: the collector walked them
    # all again and again, a third of the parsing time); resumed once the rows are freed, when this returns.
    with collector_paused():
        return _import_applications(engine, program_slug, path, clock=clock, actor=actor)


def _import_applications(engine: Engine, program_slug: str, path: Path, *, clock: Clock, actor: str) -> ImportResult:
    filename = path.name
    data = read_upload(path)
    digest = hashlib.sha256(data).hexdigest()
    now = clock.now()
    with transaction(engine) as session:
        program = load_program(session, program_slug)
        serialize(session, f"import:applications:{program.id}")  # an overlapping file imported at once waits
        defn = program.definition
        previous = previous_import(session, "applications", program.id, digest)
        if previous is not None:
            return previous
        require_open(defn, (PhaseName.ENROLLMENT, PhaseName.CONTINUOUS_REVIEW), now)

        sheet = parse_upload(data, filename)
        columns = application_columns(sheet, filename)
        apps = parse_applications(sheet, columns, defn, [d.name for d in defn.districts])
        known_ids = cross_checks(session, program.id, apps)
        errors = unnamed_cells(sheet, len(sheet.header)) + lossy_errors(sheet, sheet.header) + apps.errors
        if not sheet.rows and not errors:
            errors.append(RowError(sheet.header_row, HEADER_COLUMN, "", "文件中没有申请数据 / the file has no application rows",
                                   "file.no_rows"))
        if errors:
            raise ImportRejected(filename, without_shadowed(errors))

        warnings = [w for i in sorted(apps.warnings) for w in apps.warnings[i]]
        skipped = [(apps.numbers[i], apps.skip_reason[i]) for i in sorted(apps.skip_reason)]
        todo = by_district(apps, [i for i in range(len(apps.numbers)) if i not in apps.skip_reason])

        import_id = record_import(session, "applications", program.id, digest, filename, len(apps.numbers), actor, now)
        if import_id is None:
            previous = previous_import(session, "applications", program.id, digest)
            assert previous is not None
            return previous
        write_institutions(session, apps, todo, known_ids)
        update_contacts(session, apps, program.id, import_id, actor, now)
        app_ids = write_applications(session, apps, todo, program.id, import_id, now)
        audit_submissions(session, apps, todo, app_ids, program.id, import_id, actor, now)
        if app_ids:
            enqueue_receipts(session, program, import_id, min(app_ids), clock.today().isoformat(), now)
        set_created(session, import_id, len(app_ids))
        refresh_statistics(session, len(app_ids), Institution, Application)
        return ImportResult(rows=len(apps.numbers), created=len(app_ids), skipped=skipped, warnings=warnings,
                            import_id=import_id)

"""Issuing reports (the quarterly statistics, the year-end summary): a stored version, sent to the program's
managers with its workbook attached.

One transaction writes the version (figures, hash, XLSX and HTML), its audit row, the outbox notices that carry
the workbook and the QuarterlyReport row that tells the reminders the quarter is reported; the files are written
after the commit from the stored version (tasks/reports/report_versions.py). Issuing again changes nothing while the
figures are the same; after late data (an order imported later) it makes the next version and keeps the earlier.

On schedule (`issue_due_quarterly`, a step of the continuous-review flow): in the first month of a quarter, the
previous quarter, once per program and quarter (a version already there: nothing to do; a person re-issues).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.bulk import insert_ignoring_conflicts, table_of, write_audit
from core.db import transaction
from models.clock import Clock, local_date
from models.operations import QuarterlyReport
from models.program import User
from models.quarterly import Quarter, quarter_to_issue
from models.reports import ReportKind, ReportVersion, figures_hash
from models.states import Role
from models.transitions import AuditRecord
from tasks.gates.rows import GateError, find_user
from tasks.outbox.enqueue import NoticeDraft, enqueue_notices
from tasks.programs import get_program
from tasks.reports.quarterly import QuarterlyStatistics, quarterly_statistics
from tasks.reports.quarterly_files import quarterly_html, quarterly_xlsx
from tasks.reports.report_versions import write_version_files
from tasks.reports.summary import YearSummary, year_summary
from tasks.reports.summary_files import summary_html, summary_xlsx

NOTICE_KIND = "quarterly_report"
SUMMARY_NOTICE_KIND = "summary_report"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class NotAllowedToIssue(GateError):
    """Only a program manager issues a report on the bureau's behalf."""

    def __init__(self, user: User) -> None:
        super().__init__(f"{user.name} 不是项目管理员，不能报送统计报表 / {user.name} is not a program manager "
                         "and may not issue a report")


class IssueConflict(GateError):
    """Two people issued the same period at the same moment and the second still collided on a retry."""

    def __init__(self, slug: str, period: str) -> None:
        super().__init__(f"{slug} {period} 的报表正由他人同时报送，请稍后重试 / {slug} {period} is being issued by "
                         "someone else at this moment: try again shortly")


@dataclass(frozen=True)
class IssuedReport:
    """What issuing did: the version now in force, whether it is new, and whom it went to."""

    period: str
    version: int
    version_id: int
    created: bool
    notices: int
    files: dict[str, Path]


def quarterly_figures(stats: QuarterlyStatistics) -> dict[str, Any]:
    """The cells of every table as JSON (amounts as text with 2 decimals): what the version's hash covers."""
    def cell(value: int | Decimal) -> int | str:
        return f"{value:.2f}" if isinstance(value, Decimal) else value
    return {"quarter": str(stats.quarter), "tables": [
        {"scope": t.scope, "rows": [[label, [cell(c) for c in cells]] for label, cells in t.rows()]}
        for t in stats.tables]}


def _managers(session: Session, slug: str) -> list[tuple[int, str, str | None]]:
    """Active program managers of this program (no program named: all programs): the bureau that reports."""
    users = table_of(User)
    rows = session.execute(select(users.c.id, users.c.name, users.c.display_name, users.c.email, users.c.program_slugs)
                           .where(users.c.role == Role.PROGRAM_MANAGER.value, users.c.active.is_(True))
                           .order_by(users.c.id)).tuples()
    return [(int(i), display or name, email) for i, name, display, email, slugs in rows if not slugs or slug in slugs]


@dataclass(frozen=True)
class _Document:
    """What issuing one kind of report needs: its figures, how to render an edition, whom to tell and what."""

    kind: ReportKind
    period: str
    figures: dict[str, Any]
    render: Callable[[str], tuple[bytes, str]]  # edition (第2版（…生成）) → XLSX bytes and HTML
    notice_kind: str
    context: dict[str, Any]  # the notice's own keys, beside version, generated_on and attachments
    reported: Callable[[Session, int, datetime], None] | None = None  # what else marks the period as reported


def issue_quarterly(engine: Engine, slug: str, quarter: Quarter, *, clock: Clock, actor: str = "system",
                    out_dir: Path | None = None) -> IssuedReport:
    """Store the quarter's statistics as a new version when its figures changed, and send it; see the module."""
    stats = quarterly_statistics(engine, slug, quarter)
    figures = quarterly_figures(stats)
    doc = _Document(ReportKind.QUARTERLY, str(quarter), figures,
                    lambda edition: (quarterly_xlsx(stats, edition), quarterly_html(stats, edition)), NOTICE_KIND,
                    {"year": quarter.year, "quarter": quarter.number, "quarter_label": quarter.label},
                    lambda session, program_id, now: _mark_reported(session, program_id, quarter, figures, now))
    return _issue_retrying(engine, slug, doc, clock=clock, actor=actor, out_dir=out_dir)


def issue_summary(engine: Engine, slug: str, year: int, *, clock: Clock, actor: str = "system",
                  out_dir: Path | None = None) -> IssuedReport:
    """Store the year-end summary (001 §三(四)) as a new version when its figures changed, and send it."""
    summary = year_summary(engine, slug, year)
    doc = _Document(ReportKind.SUMMARY, str(year), summary_figures(summary),
                    lambda edition: (summary_xlsx(summary, edition), summary_html(summary, edition)),
                    SUMMARY_NOTICE_KIND, {"year": year})
    return _issue_retrying(engine, slug, doc, clock=clock, actor=actor, out_dir=out_dir)


def summary_figures(summary: YearSummary) -> dict[str, Any]:
    """Every row's cells as JSON (shares to 4 places, amounts as text with 2 decimals): what the hash covers."""
    def cell(value: int | float | Decimal) -> int | str:
        if isinstance(value, Decimal):
            return f"{value:.2f}"
        return f"{value:.4f}" if isinstance(value, float) else value
    return {"year": summary.year, "register_as_of": summary.register_as_of,
            "rows": [[r.scope, r.level, [cell(c) for c in r.cells()]] for r in summary.rows]}


def _issue_retrying(engine: Engine, slug: str, doc: _Document, *, clock: Clock, actor: str,
                    out_dir: Path | None) -> IssuedReport:
    for attempt in range(2):
        try:
            return _issue(engine, slug, doc, clock=clock, actor=actor, out_dir=out_dir)
        except IntegrityError:  # another issuer stored the same version number first: look again, once
            if attempt:
                raise IssueConflict(slug, doc.period) from None
    raise AssertionError("unreachable")


def _issue(engine: Engine, slug: str, doc: _Document, *, clock: Clock, actor: str,
           out_dir: Path | None) -> IssuedReport:
    digest = figures_hash(doc.figures)
    period = doc.period
    versions = table_of(ReportVersion)
    with transaction(engine) as session:
        program, _ = get_program(session, slug)
        assert program.id is not None
        role = Role.SYSTEM
        if actor != "system":
            user = find_user(session, actor)
            if user.role != Role.PROGRAM_MANAGER:
                raise NotAllowedToIssue(user)
            role = user.role
        mine = (versions.c.program_id == program.id, versions.c.kind == doc.kind.value, versions.c.period == period)
        latest = session.execute(select(versions.c.id, versions.c.version, versions.c.content_hash, versions.c.file_stem)
                                 .where(*mine).order_by(versions.c.version.desc()).limit(1)).first()
        if latest is not None and latest.content_hash == digest:
            return IssuedReport(period, int(latest.version), int(latest.id), False, 0,
                                write_version_files(session, int(latest.id), out_dir))
        now = clock.now()
        number = 1 if latest is None else int(latest.version) + 1
        xlsx, html = doc.render(f"第{number}版（{local_date(now).isoformat()}生成）")
        row = ReportVersion(program_id=program.id, kind=doc.kind, period=period, version=number,
                            content_hash=digest, figures=doc.figures, xlsx=xlsx, html=html,
                            file_stem=f"{slug}-{period}-{doc.kind.value}-v{number}", generated_at=now,
                            generated_by=actor[:64], data_as_of=local_date(now))
        session.add(row)
        session.flush()
        assert row.id is not None
        write_audit(session, [AuditRecord("report_version", row.id, "issue", None, None, actor, role, now,
                                          program_id=program.id,
                                          data={"kind": doc.kind.value, "period": period,
                                                "version": number, "content_hash": digest})])
        notices = enqueue_notices(session, _drafts(session, slug, program.id, doc, row, now), now)
        if doc.reported is not None:
            doc.reported(session, program.id, now)
        version_id = row.id
    with Session(engine) as session:
        files = write_version_files(session, version_id, out_dir)
    return IssuedReport(period, number, version_id, True, notices, files)


def _drafts(session: Session, slug: str, program_id: int, doc: _Document, row: ReportVersion,
            now: datetime) -> list[NoticeDraft]:
    """One notice per manager per version, keyed by both: a re-run sends nothing twice."""
    attachment = {"report_version_id": row.id, "format": "xlsx", "filename": f"{row.file_stem}.xlsx",
                  "content_type": XLSX_TYPE}
    return [NoticeDraft(key=f"report:{doc.kind.value}:{program_id}:{doc.period}:v{row.version}:user{uid}",
                        kind=doc.notice_kind, recipient_type="user", recipient_id=uid, recipient_name=name, email=email,
                        program_id=program_id,
                        context={**doc.context, "version": row.version, "generated_on": local_date(now).isoformat(),
                                 "attachments": [attachment]})
            for uid, name, email in _managers(session, slug)]


def _mark_reported(session: Session, program_id: int, quarter: Quarter, figures: dict[str, Any], now: datetime) -> None:
    """The quarter is reported: the reminders (tasks/outbox/reminders.py) stop asking for it."""
    due_on = quarter.next.first_day + relativedelta(day=31)
    insert_ignoring_conflicts(session, QuarterlyReport, [
        {"program_id": program_id, "year": quarter.year, "quarter": quarter.number, "due_on": due_on,
         "figures": figures, "submitted_at": now}], ["program_id", "year", "quarter"])
    qr = table_of(QuarterlyReport)
    session.execute(update(qr).where(qr.c.program_id == program_id, qr.c.year == quarter.year,
                                     qr.c.quarter == quarter.number).values(figures=figures, submitted_at=now))


def issue_due_quarterly(engine: Engine, slug: str, *, clock: Clock, out_dir: Path | None = None) -> IssuedReport | None:
    """The schedule's part: issue last quarter's statistics once, in the first month of a quarter (see module)."""
    today = clock.today()
    quarter = quarter_to_issue(today)
    if quarter is None:
        return None
    versions = table_of(ReportVersion)
    with Session(engine) as session:
        program, defn = get_program(session, slug)
        if defn.rules.quarterly_report_due is None:
            return None
        began = min((p.window.opens for p in defn.timeline()), default=None)
        if began is None or quarter.last_day < began:
            return None  # the quarter ended before the program began: nothing to count
        issued = session.execute(select(func.count()).select_from(versions).where(
            versions.c.program_id == program.id, versions.c.kind == ReportKind.QUARTERLY.value,
            versions.c.period == str(quarter))).scalar_one()
    if issued:
        return None
    return issue_quarterly(engine, slug, quarter, clock=clock, out_dir=out_dir)


__all__ = ["NOTICE_KIND", "SUMMARY_NOTICE_KIND", "IssueConflict", "IssuedReport", "NotAllowedToIssue",
           "issue_due_quarterly", "issue_quarterly", "issue_summary", "quarterly_figures", "summary_figures"]

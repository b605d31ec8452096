"""Issuing the quarterly statistics (001 §四(四)): on schedule once per quarter, kept as versions, sent as an attachment."""

from __future__ import annotations

import email
import io
import mailbox
from email.message import Message
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session

from models.audit import AuditEvent
from models.operations import QuarterlyReport
from models.outbox import Notice
from models.program import Program, User
from models.quarterly import Quarter, quarter_to_issue
from models.reports import ReportKind, ReportVersion
from models.states import InstitutionKind as K
from models.states import NoticeStatus, Role
from notifications.smtp import MaildirMailer
from tasks.outbox.send_notices import send_pending
from tasks.reports.issue import NotAllowedToIssue, issue_due_quarterly, issue_quarterly, issue_summary
from tasks.users import add_user
from tests.factories import (
    clock_at,
    make_enterprise,
    make_institution,
    make_order,
    make_product,
    make_program,
    make_running_application,
    shanghai,
)

Q1 = Quarter(2026, 1)


@pytest.fixture
def ningxia(engine: Engine) -> Program:
    """Two joins in 2026Q1 and an order; a manager of this program, one of another, a district reviewer."""
    program = make_program(engine, "ningxia-2025")
    pharmacy = make_institution(engine, kind=K.CHAIN_PHARMACY, district="兴庆区")
    make_running_application(engine, program, pharmacy, running_at=shanghai(2026, 2, 1, 9))
    clinic = make_institution(engine, kind=K.VILLAGE_CLINIC, district="大武口区")
    make_running_application(engine, program, clinic, running_at=shanghai(2026, 3, 1, 9))
    make_order(engine, program, clinic, make_product(engine, make_enterprise(engine)),
               ordered_at=shanghai(2026, 3, 2, 9), quantity=2, unit_price="5.00")
    add_user(engine, "nx_manager", Role.PROGRAM_MANAGER, display_name="宁夏医保局价采处", email="jc@nx.example.gov.cn")
    add_user(engine, "sy_manager", Role.PROGRAM_MANAGER, display_name="沈阳市医保局", email="jc@sy.example.gov.cn")
    add_user(engine, "xq_reviewer", Role.DISTRICT_REVIEWER, districts=["兴庆区"], email="xq@nx.example.gov.cn")
    with Session(engine) as session:
        session.execute(update(User).where(User.name == "nx_manager").values(program_slugs=["ningxia-2025"]))  # type: ignore[arg-type]
        session.execute(update(User).where(User.name == "sy_manager").values(program_slugs=["shenyang-2025"]))  # type: ignore[arg-type]
        session.commit()
    return program


def _versions(engine: Engine) -> list[ReportVersion]:
    with Session(engine) as session:
        return list(session.execute(select(ReportVersion).order_by(ReportVersion.version)).scalars())  # type: ignore[arg-type]


def _notices(engine: Engine) -> list[Notice]:
    with Session(engine) as session:
        return list(session.execute(select(Notice).where(Notice.kind == "quarterly_report")
                                    .order_by(Notice.id)).scalars())  # type: ignore[arg-type]


def test_the_quarter_issued_is_the_previous_one_and_only_in_a_quarters_first_month() -> None:
    assert quarter_to_issue(shanghai(2026, 1, 1, 0).date()) == Quarter(2025, 4)
    assert quarter_to_issue(shanghai(2026, 4, 30, 0).date()) == Quarter(2026, 1)
    assert quarter_to_issue(shanghai(2026, 10, 5, 0).date()) == Quarter(2026, 3)
    assert quarter_to_issue(shanghai(2026, 5, 1, 0).date()) is None
    assert quarter_to_issue(shanghai(2026, 3, 31, 0).date()) is None


def test_the_schedule_issues_last_quarter_once_and_sends_it_to_this_programs_managers(
        engine: Engine, ningxia: Program, tmp_path: Path) -> None:
    assert issue_due_quarterly(engine, "ningxia-2025", clock=clock_at(2026, 3, 31, 9)) is None  # Q1's last month
    issued = issue_due_quarterly(engine, "ningxia-2025", clock=clock_at(2026, 4, 2, 9), out_dir=tmp_path)
    assert issued is not None and (issued.period, issued.version, issued.created, issued.notices) == ("2026Q1", 1, True, 1)
    assert issue_due_quarterly(engine, "ningxia-2025", clock=clock_at(2026, 4, 3, 9)) is None  # once per quarter
    [version] = _versions(engine)
    assert (version.kind, version.period, version.generated_by) == (ReportKind.QUARTERLY, "2026Q1", "system")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ningxia-2025-2026Q1-quarterly-v1.html",
                                                          "ningxia-2025-2026Q1-quarterly-v1.xlsx"]
    book = openpyxl.load_workbook(io.BytesIO(version.xlsx))
    assert book.sheetnames[0] == "银川市" and book.sheetnames[-1] == "宁夏回族自治区（合计）"
    assert book["宁夏回族自治区（合计）"].cell(4, 6).value == 2  # 参加…（新增） 汇总
    [notice] = _notices(engine)  # the reviewer and the other program's manager get nothing
    assert (notice.recipient_name, notice.email) == ("宁夏医保局价采处", "jc@nx.example.gov.cn")
    assert notice.context["attachments"][0]["report_version_id"] == version.id
    with Session(engine) as session:  # the quarter is reported: the reminders stop asking for it
        report = session.execute(select(QuarterlyReport)).scalar_one()
        assert (report.year, report.quarter, report.submitted_at is not None) == (2026, 1, True)


def test_late_data_makes_version_2_and_keeps_version_1(engine: Engine, ningxia: Program) -> None:
    first = issue_quarterly(engine, "ningxia-2025", Q1, clock=clock_at(2026, 4, 2, 9))
    again = issue_quarterly(engine, "ningxia-2025", Q1, clock=clock_at(2026, 4, 9, 9), actor="nx_manager")
    assert (again.version, again.created, again.notices) == (1, False, 0)  # same figures: nothing new, nothing sent
    late = make_institution(engine, kind=K.PRIVATE_CLINIC, district="金凤区")
    make_running_application(engine, ningxia, late, running_at=shanghai(2026, 3, 20, 9))
    make_order(engine, ningxia, late, make_product(engine, make_enterprise(engine)),
               ordered_at=shanghai(2026, 3, 25, 9), quantity=4, unit_price="12.50")  # imported after issuing
    second = issue_quarterly(engine, "ningxia-2025", Q1, clock=clock_at(2026, 4, 20, 9), actor="nx_manager")
    assert (first.version, second.version, second.created, second.notices) == (1, 2, True, 1)
    v1, v2 = _versions(engine)
    assert v1.content_hash != v2.content_hash and v2.generated_by == "nx_manager"
    total_v1 = v1.figures["tables"][-1]["rows"][5][1][-1]
    total_v2 = v2.figures["tables"][-1]["rows"][5][1][-1]
    assert (total_v1, total_v2) == ("10.00", "60.00")  # 采购金额（累计）汇总: version 1 still says what was sent
    assert "第2版" in v2.html and "第1版" in v1.html
    assert [n.context["version"] for n in _notices(engine)] == [1, 2]
    with Session(engine) as session:
        audit = session.execute(select(AuditEvent.actor, AuditEvent.action).where(  # type: ignore[call-overload]
            AuditEvent.entity == "report_version").order_by(AuditEvent.id)).all()
    assert [tuple(a) for a in audit] == [("system", "issue"), ("nx_manager", "issue")]


def test_only_a_program_manager_issues_and_a_refusal_writes_nothing(engine: Engine, ningxia: Program) -> None:
    with pytest.raises(NotAllowedToIssue, match="项目管理员"):
        issue_quarterly(engine, "ningxia-2025", Q1, clock=clock_at(2026, 4, 2, 9), actor="xq_reviewer")
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(ReportVersion)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(Notice)).scalar_one() == 0


def test_a_program_without_quarterly_statistics_issues_nothing_on_schedule(engine: Engine) -> None:
    make_program(engine, "jiangxi-2025")  # 002 has no quarterly table
    assert issue_due_quarterly(engine, "jiangxi-2025", clock=clock_at(2026, 4, 2, 9)) is None
    assert _versions(engine) == []


def test_the_notice_carries_the_stored_workbook_exactly_once(engine: Engine, ningxia: Program, tmp_path: Path) -> None:
    issue_due_quarterly(engine, "ningxia-2025", clock=clock_at(2026, 4, 2, 9))
    mailer = MaildirMailer(tmp_path / "maildir")
    assert send_pending(engine, mailer, clock=clock_at(2026, 4, 2, 10)).sent == 1
    assert send_pending(engine, MaildirMailer(tmp_path / "maildir"), clock=clock_at(2026, 4, 2, 11)).sent == 0
    [raw] = [bytes(m) for m in mailbox.Maildir(tmp_path / "maildir", create=False)]
    message = email.message_from_bytes(raw)
    assert message.get_content_type() == "multipart/mixed"
    parts: list[Message] = [p for p in message.walk() if p.get_filename()]
    [attachment] = parts
    assert attachment.get_filename() == "ningxia-2025-2026Q1-quarterly-v1.xlsx"
    [version] = _versions(engine)
    assert attachment.get_payload(decode=True) == version.xlsx
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True)
    assert isinstance(text, bytes) and "第1版" in text.decode("utf-8")
    [notice] = _notices(engine)
    assert notice.status == NoticeStatus.SENT


def test_a_notice_whose_report_is_gone_fails_with_the_reason(engine: Engine, ningxia: Program, tmp_path: Path) -> None:
    issue_due_quarterly(engine, "ningxia-2025", clock=clock_at(2026, 4, 2, 9))
    with Session(engine) as session:
        session.execute(update(Notice).values(context={  # type: ignore[arg-type]
            **_notices(engine)[0].context, "attachments": [{"report_version_id": 999999, "format": "xlsx",
                                                            "filename": "x.xlsx", "content_type": "x/y"}]}))
        session.commit()
    report = send_pending(engine, MaildirMailer(tmp_path / "maildir"), clock=clock_at(2026, 4, 2, 10))
    assert (report.sent, report.dead) == (0, 1)
    [notice] = _notices(engine)
    assert notice.status == NoticeStatus.DEAD and "attachment" in (notice.last_error or "")


def test_a_version_stored_by_someone_else_meanwhile_makes_ours_the_next(engine: Engine, ningxia: Program,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import tasks.reports.issue as issue

    real = issue.quarterly_xlsx
    raced: list[bool] = []

    def racing(*args: object, **kwargs: object) -> bytes:
        if not raced:  # between our reading the latest version and storing ours, another issuer stores version 1
            raced.append(True)
            with Session(engine) as other:
                other.add(ReportVersion(program_id=ningxia.id or 0, kind=ReportKind.QUARTERLY, period="2026Q1",
                                        version=1, content_hash="0" * 64, figures={}, xlsx=b"x", html="",
                                        file_stem="other", generated_at=shanghai(2026, 4, 2, 9), generated_by="other",
                                        data_as_of=shanghai(2026, 4, 2, 9).date()))
                other.commit()
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(issue, "quarterly_xlsx", racing)
    issued = issue_quarterly(engine, "ningxia-2025", Q1, clock=clock_at(2026, 4, 2, 9))
    assert (issued.version, issued.created) == (2, True)
    assert [(v.version, v.generated_by) for v in _versions(engine)] == [(1, "other"), (2, "system")]
    assert [n.context["version"] for n in _notices(engine)] == [2]  # our failed first try sent nothing


def test_the_year_end_summary_is_issued_as_versions_with_its_workbook(engine: Engine, ningxia: Program,
                                                                      tmp_path: Path) -> None:
    first = issue_summary(engine, "ningxia-2025", 2026, clock=clock_at(2026, 12, 28, 9), actor="nx_manager",
                          out_dir=tmp_path)
    again = issue_summary(engine, "ningxia-2025", 2026, clock=clock_at(2026, 12, 29, 9), actor="nx_manager")
    assert (first.period, first.version, first.created, first.notices) == ("2026", 1, True, 1)
    assert (again.version, again.created, again.notices) == (1, False, 0)
    late = make_institution(engine, kind=K.PRIVATE_CLINIC, district="金凤区")
    make_running_application(engine, ningxia, late, running_at=shanghai(2026, 12, 30, 9))
    second = issue_summary(engine, "ningxia-2025", 2026, clock=clock_at(2027, 1, 4, 9), actor="nx_manager")
    assert (second.version, second.created) == (2, True)
    v1, v2 = _versions(engine)
    assert (v1.kind, v1.period, v2.period) == (ReportKind.SUMMARY, "2026", "2026")
    assert [v1.figures["rows"][-1][2][3], v2.figures["rows"][-1][2][3]] == [2, 3]  # 参加机构（年末）, 合计
    assert (tmp_path / "ningxia-2025-2026-summary-v1.xlsx").exists()
    book = openpyxl.load_workbook(io.BytesIO(v2.xlsx))
    assert "第2版" in str(book.worksheets[0]["A1"].value)
    with Session(engine) as session:
        kinds = session.execute(select(Notice.kind, Notice.context).order_by(Notice.id)).all()  # type: ignore[call-overload]
    assert [(k, c["version"], c["attachments"][0]["filename"]) for k, c in kinds] == [
        ("summary_report", 1, "ningxia-2025-2026-summary-v1.xlsx"),
        ("summary_report", 2, "ningxia-2025-2026-summary-v2.xlsx")]

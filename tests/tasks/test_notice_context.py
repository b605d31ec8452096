"""A bulk letter stores only what its row does not already say, and reads exactly as it did (issue #17).

Enrollment writes a receipt, a decision and a publication notice per institution — 300,000 rows at
100,000 institutions — and each context used to repeat the program's name and the institution's, which
the row holds already (its program, its recipient_name). The letters, e-mailed or printed, must not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from models.enrollment import Gate
from models.outbox import Notice
from models.program import Program
from models.states import GateKind, GateState, NoticeStatus, Role
from notifications.render import RenderedNotice, render_notice
from notifications.smtp import MaildirMailer
from tasks.gates.deciding import decide_gate
from tasks.intake.application_import import import_applications
from tasks.outbox.printing import print_no_address
from tasks.outbox.send_notices import program_letterheads, render_context, send_pending
from tasks.phases.enrollment import reconcile_enrollment
from tests.factories import clock_at, make_program, make_reviewers, shanghai
from tests.factories_files import APPLICATION_HEADER, application_row, write_xlsx

SLUG = "shenyang-2025"
HEPING = "沈阳市和平区测试1号社区卫生服务中心"
SILENT = "沈阳市和平区测试2号社区卫生服务中心"  # no e-mail: its letters are printed
SHENHE = "沈阳市沈河区测试3号社区卫生服务中心"


@dataclass
class Enrolled:
    program: Program
    notices: list[Notice]

    def of(self, kind: str, name: str) -> Notice:
        (notice,) = [n for n in self.notices if n.kind == kind and n.recipient_name == name]
        return notice


@pytest.fixture
def enrolled(engine: Engine, tmp_path: Path) -> Enrolled:
    """Three institutions imported, one rejected by its district, the other two published in batch 1."""
    program = make_program(engine, SLUG)
    reviewers = make_reviewers(engine, ["和平区", "沈河区"])
    clock = clock_at(2025, 9, 12, 10)
    rows = [application_row(1), application_row(2, 电子邮箱=""), application_row(3, district="沈河区")]
    import_applications(engine, SLUG, write_xlsx(tmp_path / "a.xlsx", APPLICATION_HEADER, rows), clock=clock)
    reconcile_enrollment(engine, SLUG, clock=clock)
    clock.set(shanghai(2025, 9, 20, 9))
    reconcile_enrollment(engine, SLUG, clock=clock)
    with Session(engine) as session:
        silent = int(session.execute(select(Notice.context).where(Notice.recipient_name == SILENT)).scalar_one()
                     ["application_id"])
    for gate in _open(engine, GateKind.DISTRICT_REVIEW):
        decide_gate(engine, gate.id, approve=[i for i in gate.items if i != silent],
                    reject=[i for i in gate.items if i == silent], reason="未签署承诺书",
                    user_name=reviewers[str(gate.district)], clock=clock)
    reconcile_enrollment(engine, SLUG, clock=clock)  # the city's gate opens
    (city,) = _open(engine, GateKind.CITY_REVIEW)
    decide_gate(engine, city.id, approve=city.items, user_name="manager", clock=clock)
    assert reconcile_enrollment(engine, SLUG, clock=clock).running == [1]
    with Session(engine) as session:
        notices = list(session.scalars(select(Notice).order_by(col(Notice.id))))
    return Enrolled(program, notices)


def _open(engine: Engine, kind: GateKind) -> list[Gate]:
    with Session(engine) as session:
        return list(session.scalars(select(Gate).where(Gate.kind == kind, Gate.state == GateState.OPEN)))


def _rendered(engine: Engine, notice: Notice) -> RenderedNotice:
    return render_notice(notice.kind, render_context(notice, program_letterheads(engine, [notice.program_id])),
                         strict=True)


def _as_written_now(notice: Notice) -> Notice:
    """The notice with neither name in its context (a no-op on what the writers store now)."""
    return notice.model_copy(update={"context": {k: v for k, v in notice.context.items()
                                                 if k not in ("program_name", "institution_name")}})


def _as_written_before(notice: Notice, program_name: str) -> Notice:
    """The same notice with the context the bulk writers stored before issue #17: both names in it."""
    return notice.model_copy(update={"context": {"program_name": program_name,
                                                 "institution_name": notice.recipient_name, **notice.context}})


def test_bulk_enrollment_letters_store_neither_the_programs_nor_the_institutions_name(enrolled: Enrolled) -> None:
    kinds = sorted((n.kind, n.recipient_name) for n in enrolled.notices)
    assert kinds == sorted([("application_receipt", HEPING), ("application_receipt", SILENT),
                            ("application_receipt", SHENHE), ("application_decision", SILENT),
                            ("application_decision", HEPING), ("application_decision", SHENHE),
                            ("batch_published", HEPING), ("batch_published", SHENHE)])
    for notice in enrolled.notices:
        assert notice.program_id == enrolled.program.id and notice.recipient_type == "institution"
        assert "program_name" not in notice.context and "institution_name" not in notice.context


def test_bulk_enrollment_letters_read_word_for_word_as_before(engine: Engine, enrolled: Enrolled) -> None:
    name = enrolled.program.name
    for notice in map(_as_written_now, enrolled.notices):
        assert _rendered(engine, notice) == _rendered(engine, _as_written_before(notice, name))
    receipt = _as_written_now(enrolled.of("application_receipt", HEPING))
    rendered = _rendered(engine, receipt)
    assert rendered.subject == f"“三进”申请已收到｜{name}｜{HEPING}（编号 {receipt.context['application_id']}）"
    assert f"已于2025年9月12日收到{HEPING}参加集采药品“三进”工作的申请书和承诺函。" in rendered.text
    assert name in rendered.text and name in rendered.html and f"收件人：{HEPING}" in rendered.text
    rejected = _rendered(engine, _as_written_now(enrolled.of("application_decision", SILENT)))
    assert rejected.subject == f"“三进”申请区（县）医保局初审：未通过｜{name}｜{SILENT}"
    assert f"{SILENT}参加集采药品“三进”工作的申请" in rejected.text and "和平区医疗保障局初审结果" in rejected.text
    published = _rendered(engine, _as_written_now(enrolled.of("batch_published", SHENHE)))
    assert published.subject == f"已列入第1批“三进”医药机构名单｜{name}｜{SHENHE}"
    assert f"{SHENHE}已列入第1批参加集采药品“三进”工作的医药机构名单，名单已于2025年9月20日向社会公布。" in published.text


def test_sent_and_printed_letters_name_the_program_and_the_institution(engine: Engine, enrolled: Enrolled,
                                                                       tmp_path: Path) -> None:
    name = enrolled.program.name
    box = tmp_path / "maildir"
    send_pending(engine, MaildirMailer(box), clock=clock_at(2025, 9, 20, 10))
    with Session(engine) as session:
        sent = {n.id: n for n in session.scalars(select(Notice).where(Notice.status == NoticeStatus.SENT))}
    assert len(sent) == 6 and len(list((box / "new").iterdir())) == 6
    for notice in sent.values():  # the subject the sender recorded is the one written before
        assert notice.subject == _rendered(engine, _as_written_before(notice, name)).subject
        assert name in str(notice.subject) and notice.recipient_name in str(notice.subject)
    letters = print_no_address(engine, SLUG, clock=clock_at(2025, 9, 20, 11), actor="manager",
                               role=Role.PROGRAM_MANAGER)
    assert len(letters.notice_ids) == 2  # the silent institution's receipt and rejection
    assert letters.html.count(f"收到{SILENT}参加集采药品“三进”工作的申请书和承诺函") == 1
    assert letters.html.count(f"{SILENT}参加集采药品“三进”工作的申请（申请编号") == 1
    assert letters.html.count(f">{name}</td>") == 2  # each letter's header names the program


def test_a_notice_written_with_both_names_keeps_its_own(engine: Engine, enrolled: Enrolled) -> None:
    """Stored values win: a letter written before issue #17 (or under the program's former name) reads as written."""
    receipt = enrolled.of("application_receipt", HEPING)
    old = receipt.model_copy(update={"context": {**receipt.context, "program_name": "沈阳市集采药品“三进”工作（旧称）",
                                                 "institution_name": "沈阳市和平区测试1号卫生服务站（旧称）"}})
    rendered = _rendered(engine, old)
    assert rendered.subject == (f"“三进”申请已收到｜沈阳市集采药品“三进”工作（旧称）｜沈阳市和平区测试1号卫生服务站（旧称）"
                                f"（编号 {receipt.context['application_id']}）")
    assert enrolled.program.name not in rendered.text and "收到沈阳市和平区测试1号卫生服务站（旧称）参加" in rendered.text


def test_only_a_letter_to_an_institution_takes_its_recipients_name_as_the_institutions(engine: Engine,
                                                                                      enrolled: Enrolled) -> None:
    receipt = _as_written_now(enrolled.of("application_receipt", HEPING))
    to_a_user = receipt.model_copy(update={"recipient_type": "user"})
    assert "institution_name" not in render_context(to_a_user, {})
    assert render_context(receipt, {})["institution_name"] == HEPING

"""Letters nobody can e-mail are printed once, one per A4 page, with the letterhead e-mail would carry (issue #19)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from models.audit import AuditEvent
from models.outbox import Notice
from models.states import NoticeStatus, Role
from tasks.outbox.printing import print_no_address
from tasks.outbox.send_notices import program_letterheads, render_context
from tasks.phases.alliance import reconcile_alliance
from tests.factories import clock_at, make_program

SLUG = "shenyang-2025"


def _invite_the_alliance(engine: Engine) -> int:
    """Shenyang's 13 invited cities have no e-mail in the program file: 13 letters to print."""
    make_program(engine, SLUG)
    reconcile_alliance(engine, SLUG, clock=clock_at(2025, 8, 7, 9))
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(Notice)
                                   .where(col(Notice.status) == NoticeStatus.NO_ADDRESS)).scalar_one())


def test_the_alliance_letters_without_e_mail_print_once_each_on_its_own_page_and_are_audited(engine: Engine) -> None:
    waiting = _invite_the_alliance(engine)
    assert waiting == 13
    batch = print_no_address(engine, SLUG, clock=clock_at(2025, 8, 7, 15), actor="manager",
                             role=Role.PROGRAM_MANAGER)
    assert len(batch.notice_ids) == 13
    assert batch.html.count('<section class="letter">') == 13
    assert "@page{size:A4" in batch.html and "page-break-after:always" in batch.html
    assert batch.html.count("关于邀请组建“三进”集采药品清单联盟的函") == 13
    assert "大连市医疗保障局：" in batch.html and "沈医保函〔2025〕" in batch.html
    assert "价格招采处 王科长" in batch.html and "024-22856712" in batch.html
    assert "<script" not in batch.html.lower()
    with Session(engine) as session:
        printed = session.scalars(select(Notice.printed_at).where(col(Notice.id).in_(batch.notice_ids))).all()
        audits = session.scalars(select(AuditEvent).where(AuditEvent.action == "print")).all()
    assert all(printed) and len(audits) == 13
    assert {(a.entity, a.actor, a.role) for a in audits} == {("notice", "manager", Role.PROGRAM_MANAGER)}
    assert sorted(int(a.entity_id) for a in audits) == sorted(batch.notice_ids)

    again = print_no_address(engine, SLUG, clock=clock_at(2025, 8, 8, 9), actor="manager", role=Role.PROGRAM_MANAGER)
    assert again.notice_ids == [] and '<section class="letter">' not in again.html
    reprint = print_no_address(engine, SLUG, clock=clock_at(2025, 8, 8, 9), actor="manager",
                               role=Role.PROGRAM_MANAGER, again=True)
    assert sorted(reprint.notice_ids) == sorted(batch.notice_ids)


def test_a_letter_carries_the_program_files_issuer_and_a_document_number_of_its_own(engine: Engine) -> None:
    _invite_the_alliance(engine)
    with Session(engine) as session:
        notices = session.scalars(select(Notice).order_by(col(Notice.id))).all()
    heads = program_letterheads(engine, [n.program_id for n in notices])
    contexts = [render_context(n, heads) for n in notices]
    assert {c["issuer_office"] for c in contexts} == {"沈阳市医疗保障局"}
    assert {c["contact_phone"] for c in contexts} == {"024-22856712"}
    numbers = [c["document_number"] for c in contexts]
    assert len(set(numbers)) == len(numbers) == 13
    assert numbers[0] == f"沈医保函〔2025〕{notices[0].id}号"

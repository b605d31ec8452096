"""Every action of a person is in the audit trail: users and their roles, list publications (issue #18).

Program loads, resends and clock moves were audited before; their tests live with them
(tests/test_cli.py, tests/notifications/test_send_notices.py).
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from models.audit import AuditEvent
from models.states import Role
from tasks.trust.audit_check import verify_audit
from tasks.users import BadUser, add_user, set_password
from tests.factories import clock_at, make_enterprise, make_product, make_program, publish_drug_list


def _audit(engine: Engine, entity: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.entity == entity)
                                 .order_by(col(AuditEvent.id))).all())


def test_creating_a_user_and_changing_its_password_are_audited_with_who_did_it_and_no_password(
        engine: Engine) -> None:
    make_program(engine)  # its districts are the ones a reviewer may be bound to
    add_user(engine, "admin", Role.PROGRAM_MANAGER, password="s3cret-first-2025")
    add_user(engine, "liu", Role.DISTRICT_REVIEWER, districts=["和平区"], password="s3cret-second-2025", actor="admin")
    with pytest.raises(BadUser, match="已存在"):  # a role is never changed by adding the name again
        add_user(engine, "liu", Role.PROGRAM_MANAGER, actor="admin")
    set_password(engine, "liu", "s3cret-third-2025", actor="admin")
    rows = _audit(engine, "user")
    assert [(r.action, r.to_state, r.actor, r.role) for r in rows] == [
        ("create", "program_manager", "system", Role.SYSTEM),
        ("create", "district_reviewer", "admin", Role.PROGRAM_MANAGER),
        ("set_password", None, "admin", Role.PROGRAM_MANAGER),
    ]
    assert rows[1].data["districts"] == ["和平区"] and rows[1].data["password_set"] is True
    assert not any("s3cret" in str(r.data) for r in rows)
    assert verify_audit(engine).broken is None


def test_publishing_a_list_is_audited_with_its_version_and_size(engine: Engine) -> None:
    program = make_program(engine)
    clock = clock_at(2025, 9, 1, 10)
    publish_drug_list(engine, program, [make_product(engine, make_enterprise(engine))], clock=clock)
    rows = _audit(engine, "list_version")
    assert [(r.action, r.to_state, r.program_id, r.data["number"], r.data["entries"]) for r in rows] == [
        ("publish", "drugs", program.id, 1, 1)]
    assert rows[0].at == clock.now()
    assert verify_audit(engine, program.slug).broken is None


def test_the_compliance_pass_on_its_bare_connection_seals_its_audit_rows(engine: Engine) -> None:
    """The one writer of audit rows outside a Session: its violations' rows are in the chain too."""
    from datetime import timedelta

    from models.compliance.codes import ViolationRule
    from tests.factories import make_order
    from tests.tasks.compliance.test_compliance_pass import _setup, run

    program, inst, product = _setup(engine)
    ordered = clock_at(2025, 12, 1, 9).now()
    make_order(engine, program, inst, product, ordered_at=ordered - timedelta(days=0), quantity=10)
    run(engine, program, clock_at(2025, 12, 5, 9), ViolationRule.LATE_DELIVERY)
    rows = _audit(engine, "violation")
    assert rows and all(r.chain_seq is not None for r in rows)
    assert verify_audit(engine, program.slug).broken is None


def test_a_registration_recorded_by_hand_is_sealed_into_the_chain(engine: Engine) -> None:
    """tasks/platform's writers insert their audit rows with statements of their own: sealed all the same."""
    from datetime import date

    from sqlalchemy import text

    from tasks.platform.accounts import register_account
    from tests.tasks.test_accounts_contracts import world as account_world

    world = account_world.__wrapped__(engine)  # type: ignore[attr-defined]
    register_account(engine, "shenyang-2025", world.pharmacy.insurance_code, "LN-9", date(2025, 10, 18),
                     clock=clock_at(2025, 10, 20, 10), actor="manager")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM auditevent WHERE chain_seq IS NULL")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM auditevent WHERE entity = 'platform_account'")).scalar_one()
    assert verify_audit(engine).broken is None

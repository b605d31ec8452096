"""The authorization matrix: every route of the web app × every role × the subject's own or another district,
generated from the app's route table and checked against web/access.py (issue #18).

A new page without an access rule fails `test_every_route_has_an_access_rule` (and the app refuses to start);
a new listing confined by district without a marker here fails `test_every_filtered_page_has_a_marker`.
The subject of every case lives in 和平区; 沈河区's reviewer is the reviewer of another district.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from core.bulk import write_audit
from core.db import transaction
from models.catalog import ListVersion
from models.clock import FixedClock
from models.compliance.codes import SubjectType, ViolationRule
from models.operations import PlatformAccount, Violation
from models.outbox import Notice
from models.states import AccountState, NoticeStatus, Role
from models.transitions import AuditRecord
from tests.factories import (
    make_enterprise,
    make_institution,
    make_product,
    make_running_application,
    publish_drug_list,
    shanghai,
)
from tests.web.conftest import PASSWORD, SLUG, World, build_world, csrf_of, sign_in
from web.access import ACCESS, DistrictRule, route_keys
from web.app import ROUTES, create_app
from web.settings import WebSettings

OWN, OTHER = "和平区", "沈河区"


@dataclass(frozen=True)
class Who:
    label: str
    role: Role | None  # None: nobody signed in
    user: str | None
    own_district: bool = True


@dataclass
class Matrix:
    world: World
    params: dict[str, str]
    users: dict[str, Who]


# Per filtered page: a query string, the text that shows 和平区's row and the text of its twin in 沈河区, and
# whether managers and observers see both (the inbox is what waits for *you*: a manager's holds city gates).
MARKERS: dict[str, tuple[str, str, str, bool]] = {
    "/programs/{slug}": ("", "和平区滞后药房", "沈河区滞后药房", True),
    "/programs/{slug}/laggards": ("", "和平区滞后药房", "沈河区滞后药房", True),
    "/inbox": ("", 'href="/gates/{gate_id}"', 'href="/gates/{other_gate_id}"', False),
    "/notices": ("", "heping-letter@example.cn", "shenhe-letter@example.cn", True),
    "/audit": ("", "和平区审计标记", "沈河区审计标记", True),
    "/programs/{slug}/enforcement": ("", "和平区滞后药房", "沈河区滞后药房", True),
    "/violations": ("", "和平区滞后药房", "沈河区滞后药房", True),
}
# The subject gate is a district gate: only its district's reviewer decides it (a manager decides city gates,
# tests/web/test_gate_pages.py); the roles the rule allows are refused here for want of that level.
DISTRICT_GATE_DECIDERS = {"/inbox/decide", "/gates/{gate_id:id}/decide"}


def _notice(session: Session, inst_id: int, email: str, program_id: int) -> None:
    session.add(Notice(idempotency_key=f"matrix:{email}", program_id=program_id, kind="account_reminder",
                       recipient_type="institution", recipient_id=inst_id, recipient_name="机构", email=email,
                       context={}, status=NoticeStatus.PENDING, created_at=shanghai(2025, 9, 19, 9)))


def build_matrix(engine: Engine) -> Matrix:
    world = build_world(engine)
    program_id = world.program.id or 0
    late = {d: make_institution(engine, district=d, name=f"{d}滞后药房") for d in (OWN, OTHER)}
    with Session(engine) as session:
        for d, inst in late.items():
            make_running_application(engine, world.program, inst, running_at=shanghai(2025, 9, 1, 9))
            session.add(PlatformAccount(program_id=program_id, institution_id=inst.id or 0,
                                        state=AccountState.PENDING, due_on=date(2025, 9, 15)))
            _notice(session, inst.id or 0, "heping-letter@example.cn" if d == OWN else "shenhe-letter@example.cn",
                    program_id)
            session.add(Violation(program_id=program_id, rule=ViolationRule.LATE_PAYMENT,  # for /violations
                                  subject_type=SubjectType.INSTITUTION, subject_id=inst.id or 0, district=d,
                                  evidence={"逾期货款": "1 笔"}, detected_on=date(2025, 10, 1),
                                  detected_at=shanghai(2025, 10, 1, 9)))
        session.commit()
    apps = {d: world.apps[0] if d == OWN else world.apps[-1] for d in (OWN, OTHER)}  # build_world: 沈河区 last
    with transaction(engine) as session:
        write_audit(session, [AuditRecord(
            entity="application", entity_id=apps[d], action="submit", from_state=None, to_state="submitted",
            actor="system", role=Role.SYSTEM, at=shanghai(2025, 9, 30, 10), reason=f"{d}审计标记",
            program_id=program_id) for d in (OWN, OTHER)])
    enterprise = make_enterprise(engine)
    publish_drug_list(engine, world.program, [make_product(engine, enterprise)],
                      clock=FixedClock(shanghai(2025, 9, 1, 9)))
    from tasks.enforcement.manual import start_ladder

    for inst in late.values():  # a ladder in each district, for the enforcement page's filter
        start_ladder(engine, SLUG, user_name="manager", clock=FixedClock(shanghai(2025, 10, 8, 9)),
                     reason="矩阵测试立案", institution=inst.name)
    with Session(engine) as session:
        version = session.exec(select(ListVersion)).first()
    assert version is not None
    params = {"slug": SLUG, "gate_id": str(world.district_gate(OWN).id), "version_id": str(version.id),
              "other_gate_id": str(world.district_gate(OTHER).id), "enterprise_id": str(enterprise.id)}
    users = {w.label: w for w in (
        Who("anonymous", None, None), Who("manager", Role.PROGRAM_MANAGER, "manager"),
        Who("reviewer of the district", Role.DISTRICT_REVIEWER, world.reviewers[OWN]),
        Who("reviewer of another district", Role.DISTRICT_REVIEWER, world.reviewers[OTHER], own_district=False),
        Who("observer", Role.OBSERVER, "observer"))}
    return Matrix(world, params, users)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def matrix(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    """One world per database for the whole matrix (building it per case would cost minutes)."""
    from core.db import make_engine
    from models.tables import metadata
    from tests.conftest import fresh_pg_schema

    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'sanjin.db'}")
        metadata.create_all(engine)
        request.addfinalizer(engine.dispose)
        return build_matrix(engine)
    context = fresh_pg_schema("matrix")
    engine = context.__enter__()
    request.addfinalizer(lambda: context.__exit__(None, None, None))
    metadata.create_all(engine)
    return build_matrix(engine)


def _client(matrix: Matrix, who: Who) -> TestClient:
    app = create_app(matrix.world.engine, clock=matrix.world.clock,
                     settings=WebSettings(secret_key="test-secret-key-0123456789"))
    client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    return sign_in(client, who.user, PASSWORD) if who.user else client


def _path(template: str, params: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: params[m.group(1)], template)


KEYS = route_keys(ROUTES)
WHO = ["anonymous", "manager", "reviewer of the district", "reviewer of another district", "observer"]


def test_every_route_has_an_access_rule() -> None:
    assert sorted(f"{m} {p}" for p, m in KEYS if (p, m) not in ACCESS) == []
    assert sorted(f"{m} {p}" for p, m in ACCESS if (p, m) not in KEYS) == [], "rules for routes that are gone"


def test_every_filtered_page_has_a_marker() -> None:
    filtered = sorted(p for (p, m), rule in ACCESS.items() if rule.district == DistrictRule.FILTERED)
    assert [p for p in filtered if p not in MARKERS] == []


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("key", KEYS, ids=[f"{m} {p}" for p, m in KEYS])
def test_route_for_role(matrix: Matrix, key: tuple[str, str], who: str) -> None:
    path_template, method = key
    rule, person = ACCESS[key], matrix.users[who]
    client = _client(matrix, person)
    path = _path(path_template, matrix.params)
    if method == "GET":
        query = MARKERS.get(path_template, ("", "", "", True))[0]
        response = client.get(path + query)
    else:
        token = csrf_of(client, "/inbox" if person.user else "/login")
        data = {"csrf_token": token, "gate": matrix.params["gate_id"], "notice": "1"}
        if path_template == "/logout":
            data = {"csrf_token": token}
        response = client.post(path, data=data)
    status = response.status_code
    if rule.roles is None:  # open to anyone: never refused, never a crash (a wrong password is a 401 page)
        assert status != 403 and status < 500, (status, response.text[:300])
        return
    if person.role is None:
        assert status == 303 and response.headers["location"].startswith("/login"), status
        return
    if person.role not in rule.roles:
        assert status == 403, (status, response.text[:300])
        return
    confined = person.role == Role.DISTRICT_REVIEWER and not person.own_district
    if path_template in DISTRICT_GATE_DECIDERS and person.role != Role.DISTRICT_REVIEWER:
        assert status == 403, (status, response.text[:300])
        return
    if rule.district == DistrictRule.REFUSED and confined:
        assert status in (403, 404), (status, response.text[:300])
        return
    assert status != 403 and status < 500, (status, response.text[:300])
    if rule.district == DistrictRule.FILTERED:
        assert status == 200
        _, own, other, others_see_all = MARKERS[path_template]
        own_marker, other_marker = own.format(**matrix.params), other.format(**matrix.params)
        if person.role == Role.DISTRICT_REVIEWER:
            # Each district's reviewer sees its own district's row and never the other's.
            assert (own_marker in response.text) is person.own_district, (who, path, own_marker)
            assert (other_marker in response.text) is not person.own_district, (who, path, other_marker)
        elif others_see_all:
            assert own_marker in response.text and other_marker in response.text, (who, path)


def test_a_reviewer_cannot_ask_for_another_districts_laggards(matrix: Matrix) -> None:
    client = _client(matrix, matrix.users["reviewer of another district"])
    assert client.get(f"/programs/{SLUG}/laggards?district={OWN}").status_code == 403
    assert client.get(f"/programs/{SLUG}/laggards?district={OTHER}").status_code == 200

"""A program with two districts' applications waiting at the district gates, users with passwords, a web client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from core.clock_store import DatabaseClock
from models.enrollment import Gate
from models.program import Program
from models.states import GateKind, InstitutionKind, Role
from tasks.phases.enrollment import reconcile_enrollment
from tests.factories import ensure_user, make_applications, make_institution, make_program, shanghai
from web.app import create_app
from web.settings import WebSettings

SLUG = "shenyang-2025"
PASSWORD = "正确的密码-2025-集采三进"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class World:
    engine: Engine
    program: Program
    clock: DatabaseClock
    reviewers: dict[str, str]  # district → user name
    apps: list[int]

    def gates(self, kind: GateKind) -> list[Gate]:
        with Session(self.engine) as session:
            return list(session.exec(select(Gate).where(Gate.kind == kind).order_by(Gate.id)).all())  # type: ignore[arg-type]

    def district_gate(self, district: str) -> Gate:
        return next(g for g in self.gates(GateKind.DISTRICT_REVIEW) if g.district == district)


def build_world(engine: Engine) -> World:
    """The enrollment test's sequence: batch on 09-12, cut-off passed on 09-20 → one district gate per district."""
    program = make_program(engine, SLUG)
    reviewers = {"和平区": "reviewer0", "沈河区": "reviewer1"}  # as make_reviewers names them, with passwords
    ensure_user(engine, "manager", Role.PROGRAM_MANAGER, password=PASSWORD, display_name="价采处王科长")
    for district, name in reviewers.items():
        ensure_user(engine, name, Role.DISTRICT_REVIEWER, districts=[district], password=PASSWORD)
    ensure_user(engine, "observer", Role.OBSERVER, password=PASSWORD)
    parent = make_institution(engine, district="和平区", kind=InstitutionKind.TOWNSHIP_HEALTH_CENTER)
    pharmacies = [make_institution(engine, district=d) for d in ("和平区", "和平区", "沈河区")]
    apps = make_applications(engine, program, [parent, *pharmacies], submitted_at=shanghai(2025, 9, 12, 10))
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 9, 12, 12))
    reconcile_enrollment(engine, SLUG, clock=clock)
    clock.set(shanghai(2025, 9, 20, 9))
    reconcile_enrollment(engine, SLUG, clock=clock)
    return World(engine, program, clock, reviewers, apps)


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(engine)


@pytest.fixture
def client(world: World) -> TestClient:
    app = create_app(world.engine, settings=WebSettings(secret_key="test-secret-key-0123456789"))
    return TestClient(app, raise_server_exceptions=False, follow_redirects=False)


def csrf_of(client: TestClient, path: str = "/login") -> str:
    match = CSRF.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> TestClient:
    token = csrf_of(client)
    response = client.post("/login", data={"username": name, "password": password, "csrf_token": token, "next": "/"})
    assert response.status_code == 303, response.text
    return client


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A temporary Prefect API for the whole session (as tests/flows): `sanjin serve` registers its deployments there."""
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # offline: no telemetry errors in the log
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield str(PREFECT_API_URL.value())

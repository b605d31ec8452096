"""Web forms and paths given generated bad input (issue #18's corpus, web part): never a 500 or a traceback, a
refusal (4xx) or a redirect back with a Chinese message, and nothing decided. SQLite only (the subject is the
pages, not the database); seeded random generation, the count printed."""

from __future__ import annotations

import random
from urllib.parse import quote

from sqlmodel import Session, select
from starlette.testclient import TestClient

from models.enrollment import Application, Gate
from models.states import GateKind
from tests.web.conftest import PASSWORD, build_world, csrf_of, sign_in
from web.app import create_app
from web.settings import WebSettings

SEED = 20261206
JUNK = ["", " ", "0", "-1", "99999999999999999999", "abc", "\x00", "\x1b[2J", "\u202e", "<script>alert(1)</script>",
        "' OR 1=1 --", "%00", "😀" * 50, "x" * 5000, "１２", "1e9", "null", "[]", "{}", "../../etc/passwd"]


def _state(engine: object) -> tuple[list[tuple[int, int, str]], list[tuple[int, str]]]:
    with Session(engine) as session:  # type: ignore[arg-type]
        gates = [(g.id, g.version, g.state.value) for g in session.exec(select(Gate).order_by(Gate.id))]  # type: ignore[arg-type]
        apps = [(a.id, a.state.value) for a in session.exec(select(Application).order_by(Application.id))]  # type: ignore[arg-type]
    return gates, apps  # type: ignore[return-value]


def test_generated_bad_forms_and_paths_are_refused_without_a_500_and_change_nothing(sqlite_engine: object) -> None:
    world = build_world(sqlite_engine)  # type: ignore[arg-type]
    rng = random.Random(SEED)
    app = create_app(world.engine, settings=WebSettings(secret_key="test-secret-key-0123456789", lockout_failures=100,
                                                        address_failures=10_000))
    client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    gate = world.district_gate("和平区")
    before, tried = _state(world.engine), 0

    for _ in range(60):  # the sign-in form: wrong or hostile fields, a wrong or missing CSRF token
        token = csrf_of(client) if rng.random() < 0.8 else rng.choice(JUNK)
        data = {"username": rng.choice([*JUNK, "manager"]), "password": rng.choice(JUNK), "csrf_token": token,
                "next": rng.choice([*JUNK, "//evil.example/", "https://evil.example/"])}
        response = client.post("/login", data=data)
        assert response.status_code in (401, 403, 429), (data, response.status_code)
        assert "Traceback" not in response.text
        tried += 1

    sign_in(client, "reviewer0", PASSWORD)
    for _ in range(160):  # the gate form: item ids, decisions and reasons that mean nothing
        token = csrf_of(client, f"/gates/{gate.id}")
        form: dict[str, object] = {"csrf_token": token, "reason": rng.choice(JUNK)}
        for _ in range(rng.randint(1, 3)):
            form[f"decision-{rng.choice(JUNK)}"] = rng.choice([*JUNK, "approve", "reject"])
        if rng.random() < 0.5:
            form["item"] = rng.choice(JUNK)
        path = rng.choice([f"/gates/{gate.id}/decide", f"/gates/{quote(rng.choice(JUNK), safe='')}/decide"])
        response = client.post(path, data=form)
        assert response.status_code in (303, 400, 403, 404, 405, 409, 422), (path, form, response.status_code)
        if response.status_code == 303:
            page = client.get(response.headers["location"])
            assert page.status_code in (200, 404) and "Traceback" not in page.text
        tried += 1

    for _ in range(60):  # ids and filters in paths and query strings
        path = rng.choice(["/gates/{}", "/lists/{}", "/programs/{}", "/programs/{}/laggards",
                           "/inbox?page={}", "/notices?status={}&page={}", "/audit?entity={}&user={}&page={}"])
        response = client.get(path.replace("{}", quote(rng.choice(JUNK), safe="")))
        assert response.status_code in (200, 303, 400, 403, 404), (path, response.status_code)
        assert "Traceback" not in response.text
        tried += 1

    assert _state(world.engine) == before, "a refused form changed a gate or an application"
    assert [g for g in world.gates(GateKind.DISTRICT_REVIEW) if g.decision.get("items")] == []
    print(f"\nweb-form corpus: {tried} bad forms and paths tried, none answered 500")
    assert tried >= 250

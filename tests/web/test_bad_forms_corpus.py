"""Every web form and path given generated bad input (issue #18's corpus, web part), on SQLite and PostgreSQL.

Hypothesis draws a bad value for each field of each form (tests/corpus.py: derandomized in CI). Each case must be
refused: a 4xx page, or a redirect back to a page whose message says what was wrong, in Chinese; never a 500 or a
traceback, never the password sent, and nothing written (every table's rows as before; sign-in throttling and
sessions aside, which count failures by design). The count per family and database is printed.

No schemathesis: the app is Starlette routes rendering HTML (web/app.py), there is no OpenAPI schema to read.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine
from starlette.testclient import TestClient

from models.gate_decisions import decided_count
from tests.corpus import CJK, Stopwatch, corpus_settings, report, row_counts
from tests.web.conftest import PASSWORD, SLUG, World, build_world, csrf_of, sign_in
from web.app import create_app
from web.settings import WebSettings

JUNK = ["", " ", "0", "-1", "99999999999999999999", "abc", "\x00", "\x1b[2J", "\u202e", "<script>alert(1)</script>",
        "' OR 1=1 --", "%00", "😀" * 50, "x" * 5000, "１２", "1e9", "null", "[]", "{}", "../../etc/passwd", "\u3000"]
THROTTLE_TABLES = frozenset({"signinthrottle", "websession"})  # failures are counted there on purpose
FLASH = re.compile(r'<p class="flash[^"]*"[^>]*>(.*?)</p>', re.S)
REFUSED = (400, 401, 403, 404, 405, 409, 422, 429)

junk_text = st.one_of(st.sampled_from(JUNK), st.text(max_size=60))


def _counts(engine: Engine) -> dict[str, int]:
    return row_counts(engine, leave_out=THROTTLE_TABLES)


def _not_an_id(real: set[int]) -> st.SearchStrategy[str]:
    """A row id that names nothing: junk text, or a number that is no row of the world (huge, negative, unused)."""
    numbers = st.integers(min_value=-(10**25), max_value=10**25).filter(lambda i: i not in real and (i < 1 or i > 10**6))
    return st.one_of(st.sampled_from(JUNK), st.text(max_size=12), numbers.map(str))


class Checker:
    """Asserts one response is a refusal a person can read, and that nothing was written since the start."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.before = _counts(world.engine)
        self.tried: dict[str, int] = {}

    def refused(self, family: str, response: object, client: TestClient, *, secret: str | None = None) -> None:
        r = response  # starlette's httpx Response
        status: int = r.status_code  # type: ignore[attr-defined]
        text: str = r.text  # type: ignore[attr-defined]
        assert status in (*REFUSED, 303), (family, status, text[:300])
        if status == 303:  # back to the form's page, which says what was wrong
            page = client.get(r.headers["location"])  # type: ignore[attr-defined]
            # 400/404: the page of a slug or id that names nothing (a NUL in it is a 400 on PostgreSQL), with the message
            assert page.status_code in (200, 400, 404), (family, page.status_code)
            text = page.text
            message = FLASH.search(text) if page.status_code == 200 else None
            assert CJK.search(message.group(1) if message else "" if page.status_code == 200 else text), (
                family, r.headers["location"])  # type: ignore[attr-defined]
        else:
            assert CJK.search(text), (family, status, text[:300])
        assert "Traceback" not in text and 'File "' not in text, (family, text[:500])
        if secret and len(secret) >= 8:
            assert secret not in text and html.escape(secret) not in text, (family, "the password was echoed")
        assert _counts(self.world.engine) == self.before, f"{family}: a refused form wrote something"
        self.tried[family] = self.tried.get(family, 0) + 1


def _client(world: World) -> TestClient:
    app = create_app(world.engine, settings=WebSettings(secret_key="test-secret-key-0123456789",
                                                        lockout_failures=100, address_failures=10_000))
    return TestClient(app, raise_server_exceptions=False, follow_redirects=False)


@pytest.mark.slow
def test_generated_bad_forms_and_paths_are_refused_with_a_message_and_change_nothing(engine: Engine) -> None:
    took, world = Stopwatch(), build_world(engine)
    anonymous, reviewer, manager = _client(world), sign_in(_client(world), "reviewer0"), sign_in(_client(world),
                                                                                                "manager")
    check = Checker(world)
    gate = world.district_gate("和平区")
    real = set(world.apps) | {g.id for g in world.gates(gate.kind) if g.id is not None} | {gate.id or 0}
    not_an_id = _not_an_id(real)
    reviewer_token, manager_token, login_token = csrf_of(reviewer, "/inbox"), csrf_of(manager, "/"), csrf_of(anonymous)
    token = st.one_of(st.just("<valid>"), st.just("<missing>"), junk_text)

    def csrf(value: str, valid: str) -> dict[str, str]:
        return {} if value == "<missing>" else {"csrf_token": valid if value == "<valid>" else value}

    @corpus_settings(50)
    @given(username=st.one_of(junk_text, st.just("observer")),  # a real name: never 100 failures
           password=st.text(min_size=0, max_size=80).filter(lambda p: p != PASSWORD).map(lambda p: f"猜{p}密码"),
           tok=token, target=st.one_of(junk_text, st.sampled_from(["//evil.example/", "https://evil.example/",
                                                                    "javascript:alert(1)"])))
    def sign_in_form(username: str, password: str, tok: str, target: str) -> None:
        data = {"username": username, "password": password, "next": target, **csrf(tok, login_token)}
        check.refused("sign-in", anonymous.post("/login", data=data), anonymous, secret=password)

    @corpus_settings(70)
    @given(tok=token, item=not_an_id, choice=st.one_of(st.sampled_from(["approve", "reject"]), junk_text),
           reason=junk_text, bulk=st.one_of(st.none(), junk_text.filter(lambda b: b not in (
               "approve", "reject", "approve_page", "reject_page")), st.sampled_from(["approve_page", "reject_page"])),
           page_items=st.lists(not_an_id, max_size=3), blank_reject=st.booleans(),
           blank=st.sampled_from(["", " ", "\t", "\u3000"]), path_id=st.one_of(st.none(), not_an_id))
    def gate_form(tok: str, item: str, choice: str, reason: str, bulk: str | None, page_items: list[str],
                  blank_reject: bool, blank: str, path_id: str | None) -> None:
        form: dict[str, object] = {**csrf(tok, reviewer_token), "reason": reason, f"item_{item}": choice,
                                   f"reason_{item}": reason}
        if blank_reject:  # a real item rejected without a reason
            form = {**csrf(tok, reviewer_token), f"item_{gate.items[0]}": "reject", "reason": blank,
                    f"reason_{gate.items[0]}": blank}
        elif bulk is not None:
            form.update(bulk=bulk, page_item=page_items)
        path = f"/gates/{gate.id}/decide" if path_id is None else f"/gates/{quote(path_id, safe='')}/decide"
        check.refused("gate form", reviewer.post(path, data=form), reviewer)  # type: ignore[arg-type]

    @corpus_settings(20)
    @given(tok=token, gates=st.lists(not_an_id, max_size=3), bulk=junk_text, reason=junk_text)
    def inbox_form(tok: str, gates: list[str], bulk: str, reason: str) -> None:
        form = {**csrf(tok, reviewer_token), "gate": gates, "bulk": bulk, "reason": reason}
        check.refused("inbox form", reviewer.post("/inbox/decide", data=form), reviewer)  # type: ignore[arg-type]

    @corpus_settings(20)
    @given(tok=token, notices=st.lists(not_an_id, min_size=1, max_size=3),
           program=junk_text.filter(lambda s: s.strip() != SLUG), again=junk_text, resend=st.booleans())
    def notice_forms(tok: str, notices: list[str], program: str, again: str, resend: bool) -> None:
        if resend:
            response = manager.post("/notices/resend", data={**csrf(tok, manager_token), "notice": notices})
        else:
            response = manager.post("/notices/print", data={**csrf(tok, manager_token), "program": program,
                                                            "again": again})
        check.refused("notice forms", response, manager)

    @corpus_settings(30)
    @given(tok=token, action=st.sampled_from(["start", "exit", "bad-record"]), slug=st.one_of(st.just(SLUG), junk_text),
           enterprise=st.one_of(st.just("1"), not_an_id), subject_kind=st.one_of(
               st.sampled_from(["institution", "enterprise"]), junk_text),
           subject=junk_text, violation=junk_text, day=junk_text, reason=junk_text)
    def enforcement_forms(tok: str, action: str, slug: str, enterprise: str, subject_kind: str, subject: str,
                          violation: str, day: str, reason: str) -> None:
        base = f"/programs/{quote(slug, safe='')}"
        if action == "start":
            path, form = f"{base}/enforcement/start", {"subject_kind": subject_kind, "subject": subject,
                                                       "violation": violation, "reason": reason}
        else:
            path = f"{base}/enterprises/{quote(enterprise, safe='')}/{action}"
            form = {"exits_on": day, "starts_on": day, "reason": reason}
        check.refused("enforcement forms", manager.post(path, data={**csrf(tok, manager_token), **form}), manager)

    @corpus_settings(50)
    @given(template=st.sampled_from(["/gates/{}", "/lists/{}", "/programs/{}", "/programs/{}/laggards",
                                     "/programs/{}/enterprises/{}", "/inbox?page={}", "/inbox?kind={}",
                                     "/gates/1?show={}", "/notices?status={}&page={}",
                                     "/audit?entity={}&user={}&page={}"]),
           values=st.lists(not_an_id, min_size=3, max_size=3))
    def paths(template: str, values: list[str]) -> None:
        path = template
        for v in values:
            path = path.replace("{}", quote(v, safe=""), 1)
        response = reviewer.get(path)
        if response.status_code == 200:  # a filter that matches nothing is an empty page, not an error
            assert "Traceback" not in response.text and CJK.search(response.text)
            check.tried["paths"] = check.tried.get("paths", 0) + 1
            return
        check.refused("paths", response, reviewer)

    families: list[Callable[[], None]] = [sign_in_form, gate_form, inbox_form, notice_forms, enforcement_forms, paths]
    for family in families:
        family()
    report("web-form corpus", engine.dialect.name, check.tried, took)
    assert [g for g in world.gates(gate.kind) if decided_count(g.decision)] == []
    assert sum(check.tried.values()) >= 200


def test_a_twenty_digit_id_in_a_form_is_a_400_on_every_database(engine: Engine) -> None:
    """Found by the corpus on PostgreSQL: a gate or notice id past INTEGER reached the driver (a 500 there)."""
    world = build_world(engine)
    reviewer, manager = sign_in(_client(world), "reviewer0"), sign_in(_client(world), "manager")
    huge = "99999999999999999999"
    inbox = reviewer.post("/inbox/decide", data={"csrf_token": csrf_of(reviewer, "/inbox"), "gate": huge,
                                                 "bulk": "approve"})
    resend = manager.post("/notices/resend", data={"csrf_token": csrf_of(manager, "/"), "notice": huge})
    assert (inbox.status_code, resend.status_code) == (400, 400)
    assert "事项编号超出范围" in inbox.text and "通知编号超出范围" in resend.text


def test_a_nul_character_in_a_path_or_query_is_a_400_on_every_database(engine: Engine) -> None:
    """Found by the corpus on PostgreSQL: text with NUL cannot be a bind parameter there (a 500); SQLite found nothing."""
    world = build_world(engine)
    reviewer = sign_in(_client(world), "reviewer0")
    for path in ("/programs/%00", "/audit?entity=%00", "/notices?status=a%00b"):
        response = reviewer.get(path)
        assert response.status_code in (200, 400, 404), (path, response.status_code)  # 200: a filter matching nothing
        assert "Traceback" not in response.text and CJK.search(response.text)


def test_an_enforcement_form_posted_to_a_program_that_does_not_exist_is_a_404(engine: Engine) -> None:
    """Found by the corpus: /programs/%20/enforcement/start raised UnknownProgram past the form's handler (a 500)."""
    world = build_world(engine)
    manager = sign_in(_client(world), "manager")
    token = csrf_of(manager, "/")
    for path in ("/programs/%20/enforcement/start", "/programs/nosuch/enforcement/start"):
        response = manager.post(path, data={"csrf_token": token, "subject_kind": "institution", "subject": "x",
                                            "reason": "理由", "exits_on": "2025-12-01", "starts_on": "2025-12-01"})
        assert response.status_code == 404 and "没有项目" in response.text, (path, response.status_code)
    # Refused by the form (a violation number that is no number) before the program is looked up: back to the
    # page of the slug as it was sent, quoted (a "?" in it cut the path short).
    response = manager.post("/programs/a%3Fb/enforcement/start", data={"csrf_token": token, "violation": "-1"})
    assert (response.status_code, response.headers["location"]) == (303, "/programs/a%3Fb/enforcement")

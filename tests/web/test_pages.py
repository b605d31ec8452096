"""The web pages as policy: who sees and decides what, CSRF on every form, Chinese error pages, decisions recorded."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.testclient import TestClient

from models.audit import AuditEvent
from models.catalog import ListVersion
from models.enrollment import Application, Gate, Review
from models.outbox import Notice
from models.program import User
from models.states import ApplicationState, GateKind, GateState, NoticeStatus
from tasks.gates.rows import DecisionResult, attach_flow_run
from tasks.phases.enrollment import reconcile_enrollment
from tests.web.conftest import PASSWORD, SLUG, World, csrf_of, sign_in

PAGES = ["/", f"/programs/{SLUG}", f"/programs/{SLUG}/lists", "/inbox", "/notices", "/audit",
         f"/audit?program={SLUG}&entity=gate&actor=system&since=2025-09-01&until=2025-09-30"]


def _states(world: World, ids: list[int]) -> list[ApplicationState]:
    with Session(world.engine) as session:
        return [session.get(Application, i).state for i in ids]  # type: ignore[union-attr]


def _run_to_published_list(world: World, client: TestClient) -> None:
    """Both districts approve, the manager approves the city gate, a reconcile publishes the institution list."""
    for district, name in world.reviewers.items():
        client.cookies.clear()
        sign_in(client, name)
        gate = world.district_gate(district)
        client.post("/inbox/decide", data={"gate": [str(gate.id)], "bulk": "approve", "csrf_token": csrf_of(client, "/inbox")})
    reconcile_enrollment(world.engine, SLUG, clock=world.clock)
    client.cookies.clear()
    sign_in(client, "manager")
    (city,) = world.gates(GateKind.CITY_REVIEW)
    client.post(f"/gates/{city.id}/decide", data={"bulk": "approve", "csrf_token": csrf_of(client, "/inbox")})
    reconcile_enrollment(world.engine, SLUG, clock=world.clock)


@pytest.mark.parametrize("path", [*PAGES, "/gates/1", "/lists/1"])
def test_an_anonymous_visitor_is_sent_to_sign_in(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_every_page_renders_for_a_manager(world: World, client: TestClient) -> None:
    sign_in(client, "manager")
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[-500:])
        assert "价采处王科长" in response.text and 'lang="zh-CN"' in response.text
    overview = client.get(f"/programs/{SLUG}").text
    assert "<svg" in overview and 'class="today"' in overview and "机构申报" in overview
    inbox = client.get("/inbox").text
    assert "待我审批" in inbox and "没有等待您处理" in inbox  # both open gates are district gates
    gate = world.district_gate("和平区")
    page = client.get(f"/gates/{gate.id}").text
    assert "测试机构" in page and "统一社会信用代码" in page and "个工作日" in page


def test_list_versions_and_their_diff_render_after_a_batch_runs(world: World, client: TestClient) -> None:
    _run_to_published_list(world, client)
    with Session(world.engine) as session:
        version = session.execute(select(ListVersion)).scalar_one()
    lists = client.get(f"/programs/{SLUG}/lists").text
    assert "定点机构名单" in lists and f"/lists/{version.id}" in lists
    page = client.get(f"/lists/{version.id}")
    assert page.status_code == 200 and "新增（4）" in page.text
    assert client.get("/lists/99999").status_code == 404


def test_a_district_reviewer_sees_and_decides_only_its_district(world: World, client: TestClient) -> None:
    sign_in(client, world.reviewers["和平区"])
    own, other = world.district_gate("和平区"), world.district_gate("沈河区")
    inbox = client.get("/inbox").text
    assert f"/gates/{own.id}" in inbox and f"/gates/{other.id}" not in inbox
    assert client.get(f"/gates/{own.id}").status_code == 200
    token = csrf_of(client, "/inbox")
    forbidden = client.get(f"/gates/{other.id}")
    assert forbidden.status_code == 403 and "无权" in forbidden.text
    assert client.post(f"/gates/{other.id}/decide", data={"bulk": "approve", "csrf_token": token}).status_code == 403
    bulk = client.post("/inbox/decide", data={"gate": [str(own.id), str(other.id)], "bulk": "approve", "csrf_token": token})
    assert bulk.status_code == 403 and "沈河区" in bulk.text
    assert client.post("/notices/resend", data={"notice": ["1"], "csrf_token": token}).status_code == 403
    with Session(world.engine) as session:
        assert session.get(Gate, own.id).state == GateState.OPEN  # type: ignore[union-attr]  # all or nothing
        assert session.get(Gate, other.id).state == GateState.OPEN  # type: ignore[union-attr]


def test_an_observer_can_look_but_decide_nothing(world: World, client: TestClient) -> None:
    sign_in(client, "observer")
    gate = world.district_gate("和平区")
    assert client.get(f"/gates/{gate.id}").status_code == 200
    token = csrf_of(client, "/inbox")
    assert client.post(f"/gates/{gate.id}/decide", data={"bulk": "approve", "csrf_token": token}).status_code == 403
    assert client.post("/inbox/decide", data={"gate": [str(gate.id)], "bulk": "approve",
                                              "csrf_token": token}).status_code == 403
    assert client.post("/notices/resend", data={"notice": ["1"], "csrf_token": token}).status_code == 403
    assert _states(world, gate.items) == [ApplicationState.SUBMITTED] * len(gate.items)


def test_a_post_without_its_csrf_token_is_refused(world: World, client: TestClient) -> None:
    assert client.post("/login", data={"username": "manager", "password": PASSWORD}).status_code == 403
    sign_in(client, world.reviewers["和平区"])
    gate = world.district_gate("和平区")
    for data in ({"bulk": "approve"}, {"bulk": "approve", "csrf_token": "forged"}):
        response = client.post(f"/gates/{gate.id}/decide", data=data)
        assert response.status_code == 403 and "CSRF" in response.text
    assert client.post("/logout").status_code == 403
    assert _states(world, gate.items) == [ApplicationState.SUBMITTED] * len(gate.items)


def test_a_bulk_decision_in_the_inbox_records_the_reviewer_and_moves_the_applications(world: World,
                                                                                     client: TestClient) -> None:
    name = world.reviewers["和平区"]
    sign_in(client, name)
    gate = world.district_gate("和平区")
    response = client.post("/inbox/decide", data={"gate": [str(gate.id)], "bulk": "approve",
                                                  "csrf_token": csrf_of(client, "/inbox")})
    assert response.status_code == 303 and response.headers["location"] == "/inbox"
    assert f"「{gate.title}」已决定：批准 {len(gate.items)} 项" in client.get("/inbox").text
    with Session(world.engine) as session:
        decided = session.get(Gate, gate.id)
        assert decided is not None and decided.state == GateState.DECIDED and decided.decided_by == name
        reviewers = set(session.execute(select(col(Review.reviewer)).where(col(Review.gate_id) == gate.id)).scalars())
    assert reviewers == {name}
    assert _states(world, gate.items) == [ApplicationState.DISTRICT_APPROVED] * len(gate.items)
    audit = client.get(f"/audit?actor={name}").text
    assert f"审批事项 · {gate.title}" in audit and "和平区医疗保障局区县审核员" in audit  # names, not #ids or logins


def test_items_are_decided_one_by_one_and_a_rejection_needs_a_reason(world: World, client: TestClient) -> None:
    sign_in(client, world.reviewers["和平区"])
    gate = world.district_gate("和平区")
    first, second, *rest = gate.items
    token = csrf_of(client, "/inbox")
    client.post(f"/gates/{gate.id}/decide", data={f"item_{first}": "reject", "csrf_token": token})
    assert "驳回必须说明理由" in client.get(f"/gates/{gate.id}").text
    assert _states(world, [first]) == [ApplicationState.SUBMITTED]
    client.post(f"/gates/{gate.id}/decide", data={f"item_{first}": "reject", f"reason_{first}": "承诺药品数量不足",
                                                  f"item_{second}": "approve", "csrf_token": token})
    assert _states(world, [first, second]) == [ApplicationState.REJECTED, ApplicationState.DISTRICT_APPROVED]
    page = client.get(f"/gates/{gate.id}").text
    assert "承诺药品数量不足" in page and "已驳回" in page
    client.post(f"/gates/{gate.id}/decide", data={"bulk": "approve", "csrf_token": token})
    assert _states(world, rest) == [ApplicationState.DISTRICT_APPROVED] * len(rest)
    with Session(world.engine) as session:
        assert session.get(Gate, gate.id).decided_by == world.reviewers["和平区"]  # type: ignore[union-attr]


def test_the_manager_decides_the_city_gate_after_the_districts(world: World, client: TestClient) -> None:
    _run_to_published_list(world, client)
    (city,) = world.gates(GateKind.CITY_REVIEW)
    with Session(world.engine) as session:
        assert session.get(Gate, city.id).decided_by == "manager"  # type: ignore[union-attr]
    assert set(_states(world, world.apps)) == {ApplicationState.RUNNING}
    assert "运行中" in client.get(f"/programs/{SLUG}").text


def test_the_outbox_page_and_the_printed_letters_name_the_institution_and_the_program(world: World,
                                                                                      client: TestClient) -> None:
    """Issue #17: a bulk letter's context no longer holds either name; the pages showing it still do."""
    _run_to_published_list(world, client)
    with Session(world.engine) as session:
        published = session.scalars(select(Notice).where(col(Notice.kind) == "batch_published")).all()
        assert len(published) == 4 and all("program_name" not in n.context for n in published)
        first = published[0]
        # Its e-mail turned out wrong: the letter goes on paper instead.
        first.email, first.status, first.next_attempt_at = None, NoticeStatus.NO_ADDRESS, None
        session.add(first)
        names = [n.recipient_name for n in published]
        session.commit()
    name = names[0]
    listed = client.get(f"/notices?program={SLUG}&kind=batch_published").text
    assert all(n in listed for n in names)
    letters = client.post("/notices/print", data={"program": SLUG, "csrf_token": csrf_of(client, "/notices")})
    assert letters.status_code == 200
    assert f"{name}已列入第1批参加集采药品“三进”工作的医药机构名单" in letters.text
    assert f">{world.program.name}</td>" in letters.text and f"收件人：{name}" in letters.text


def test_a_manager_resends_a_dead_notice(world: World, client: TestClient) -> None:
    with Session(world.engine) as session:
        notice = Notice(idempotency_key="web-test-dead", kind="application_decision", recipient_type="institution",
                        recipient_name="测试机构", email="inst@example.cn", status=NoticeStatus.DEAD,
                        last_error="550 mailbox unavailable", created_at=world.clock.now())
        session.add(notice)
        session.commit()
        notice_id = notice.id
    sign_in(client, "manager")
    assert "550 mailbox unavailable" in client.get("/notices?status=dead").text
    response = client.post("/notices/resend", data={"notice": [str(notice_id)], "csrf_token": csrf_of(client, "/notices")})
    assert response.status_code == 303
    with Session(world.engine) as session:
        assert session.get(Notice, notice_id).status == NoticeStatus.PENDING  # type: ignore[union-attr]
        actors = session.execute(select(col(AuditEvent.actor)).where(col(AuditEvent.entity) == "notice")).scalars().all()
    assert "manager" in actors
    assert "已重新排队 1 条通知" in client.get("/notices").text


def test_errors_are_chinese_pages_without_a_traceback(world: World, client: TestClient,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    sign_in(client, "manager")
    missing = client.get("/gates/99999")
    assert missing.status_code == 404 and "页面不存在" in missing.text
    assert client.get("/programs/nowhere-2025").status_code == 404
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/notices?status=bogus").status_code == 400

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr("web.pages_overview.list_programs", broken)
    response = client.get("/")
    assert response.status_code == 500 and "系统内部错误" in response.text
    assert "Traceback" not in response.text and "hunter2" not in response.text


def test_a_wrong_password_is_refused_and_sign_in_never_redirects_off_site(world: World, client: TestClient) -> None:
    token = csrf_of(client)
    wrong = client.post("/login", data={"username": "manager", "password": "wrong", "csrf_token": token})
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
    ghost = client.post("/login", data={"username": "nobody", "password": PASSWORD, "csrf_token": token})
    assert ghost.status_code == 401
    right = client.post("/login", data={"username": "manager", "password": PASSWORD, "csrf_token": token,
                                        "next": "//evil.example/"})
    assert right.status_code == 303 and right.headers["location"] == "/"


def test_a_scrypt_hash_is_upgraded_to_argon2_on_sign_in(world: World, client: TestClient) -> None:
    from sqlalchemy import update

    from tasks.signin.passwords import scrypt_hash

    with world.engine.begin() as conn:  # as stored before argon2: `user add` hashes with argon2 now
        conn.execute(update(User).where(col(User.name) == "observer").values(password_hash=scrypt_hash(PASSWORD)))
    with Session(world.engine) as session:
        before = session.execute(select(col(User.password_hash)).where(col(User.name) == "observer")).scalar_one()
    assert before.startswith("scrypt$")
    sign_in(client, "observer")
    with Session(world.engine) as session:
        after = session.execute(select(col(User.password_hash)).where(col(User.name) == "observer")).scalar_one()
    assert after.startswith("$argon2id$")
    client.cookies.clear()
    sign_in(client, "observer")  # the new hash verifies


def test_a_session_expires(world: World, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_in(client, "manager")
    assert client.get("/inbox").status_code == 200
    later = int(time.time()) + 9 * 3600  # past the 8-hour session
    monkeypatch.setattr("itsdangerous.timed.TimestampSigner.get_timestamp", lambda self: later)
    response = client.get("/inbox")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_signing_out_ends_the_session(world: World, client: TestClient) -> None:
    sign_in(client, "manager")
    assert client.post("/logout", data={"csrf_token": csrf_of(client, "/inbox")}).status_code == 303
    assert client.get("/inbox").status_code == 303


def test_every_asset_is_local_and_the_policy_says_so(world: World, client: TestClient) -> None:
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    sign_in(client, "manager")
    for path in PAGES:
        response = client.get(path)
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert not re.search(r'(?:src|href)="(?:https?:)?//', response.text), path  # nothing from another host


def test_the_gate_page_shows_each_items_findings_and_the_districts_opinion(world: World, client: TestClient) -> None:
    gate = world.district_gate("和平区")
    with Session(world.engine) as session:
        app = session.get(Application, gate.items[0])
        assert app is not None
        app.findings = [{"row": 3, "column": "联系电话", "value": "123", "rule": "phone",
                         "message": "联系电话位数不对，请核实"}]
        session.add(app)
        session.commit()
    sign_in(client, world.reviewers["和平区"])
    assert "联系电话位数不对，请核实" in client.get(f"/gates/{gate.id}").text
    client.post("/inbox/decide", data={"gate": [str(gate.id)], "bulk": "approve", "csrf_token": csrf_of(client, "/inbox")})
    client.cookies.clear()
    sign_in(client, world.reviewers["沈河区"])
    other = world.district_gate("沈河区")
    client.post("/inbox/decide", data={"gate": [str(other.id)], "bulk": "approve", "csrf_token": csrf_of(client, "/inbox")})
    reconcile_enrollment(world.engine, SLUG, clock=world.clock)
    (city,) = world.gates(GateKind.CITY_REVIEW)
    client.cookies.clear()
    sign_in(client, "manager")
    inbox = client.get("/inbox").text
    assert f"/gates/{city.id}" in inbox and "个工作日" in inbox
    page = client.get(f"/gates/{city.id}").text
    assert "区县意见：批准（和平区医疗保障局区县审核员）" in page  # the reviewer's unit, never its login name


def test_a_web_decision_wakes_the_run_waiting_on_the_gate(world: World, client: TestClient,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    gate = world.district_gate("和平区")
    attach_flow_run(world.engine, [gate.id], "00000000-0000-0000-0000-000000000001")  # type: ignore[list-item]
    calls: list[tuple[str | None, str, list[int]]] = []

    def resume(result: DecisionResult, user: str) -> str:  # Prefect itself is exercised in tests/flows
        calls.append((result.flow_run_id, user, result.approved))
        return "已唤醒等待中的流程"

    monkeypatch.setattr("web.pages_gates.resume_waiting_run", resume)
    name = world.reviewers["和平区"]
    sign_in(client, name)
    client.post(f"/gates/{gate.id}/decide", data={"bulk": "approve", "csrf_token": csrf_of(client, "/inbox")})
    assert calls == [("00000000-0000-0000-0000-000000000001", name, sorted(gate.items))]
    shown = client.get(f"/gates/{gate.id}").text
    assert "后续处理已自动继续" in shown and "已唤醒" not in shown  # a plain sentence, not the engineer's

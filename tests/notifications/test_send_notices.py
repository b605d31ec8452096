import asyncio
import email
import email.policy
import inspect
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from models.audit import AuditEvent
from models.outbox import Notice
from models.program import Program
from models.states import NoticeStatus
from notifications.render import message_id_for, pack_html, render_notice
from notifications.smtp import Delivery, MaildirMailer, OutgoingMessage, SendOutcome, SmtpMailer
from tasks.outbox import send_notices
from tasks.outbox.enqueue import NoticeDraft, enqueue_notices
from tasks.outbox.followup import list_no_address, resend
from tasks.outbox.leases import LEASE, SendReport, backoff, reclaim_expired
from tasks.outbox.send_notices import send_chunk, send_pending, send_pending_async
from tests.notifications.conftest import free_port
from tests.notifications.samples import PROGRAM, SAMPLES

DOMAIN = "ybj.shenyang.example.gov.cn"


def draft(i: int, kind: str = "application_receipt", *, email: str | None = "auto", program_id=None) -> NoticeDraft:
    ctx = {k: v for k, v in SAMPLES[kind].items() if k not in ("recipient_name", "today")}
    ctx = {k: (str(v) if k == "amount" else v) for k, v in ctx.items()}  # JSON holds amounts as text
    return NoticeDraft(
        key=f"{kind}:{i}",
        kind=kind,
        recipient_type="institution",
        recipient_name=SAMPLES[kind]["recipient_name"],
        email=f"inst{i}@example.cn" if email == "auto" else email,
        context=ctx,
        recipient_id=i,
        program_id=program_id,
    )


def enqueue(engine, clock, drafts) -> list[int]:
    with Session(engine) as session, session.begin():
        enqueue_notices(session, drafts, clock.now())
    with Session(engine) as session:
        keys = [d.key for d in drafts]
        return list(session.scalars(select(Notice.id).where(Notice.idempotency_key.in_(keys)).order_by(Notice.id)))


def rows(engine) -> dict[int, Notice]:
    with Session(engine) as session:
        return {n.id: n for n in session.scalars(select(Notice).order_by(Notice.id))}


def add_program(engine) -> int:
    with Session(engine) as session, session.begin():
        program = Program(slug="shenyang-2025", name=PROGRAM, region="沈阳市", region_code="210100",
                          definition={}, content_hash="0" * 64)
        session.add(program)
        session.flush()
        assert program.id is not None
        return program.id


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def down_mailer(settings_factory) -> SmtpMailer:
    """A mailer pointed at a port nobody listens on."""
    return SmtpMailer(settings_factory(smtp_port=free_port()), timeout=5)


class CrashAfterSend:
    """Delivers for real, then dies before the outbox can record it (a killed worker, an OOM…).

    The kill lands before the first progress record: the accepted messages are not reported as they go (a
    real kill 20 ms after the first 250 would leave some recorded, which the crash tests cover); otherwise the
    recorder thread may or may not have written by the time the exception is raised.
    """

    def __init__(self, inner):
        self.inner = inner

    @property
    def sender(self):
        return self.inner.sender

    async def send_many(self, messages, **kwargs):
        await self.inner.send_many(messages, **{**kwargs, "on_accepted": None})
        raise RuntimeError("worker killed after delivery")

    async def aclose(self):
        await self.inner.aclose()


def test_delivered_messages_arrive_intact_with_chinese_subject_body_and_stable_headers(engine, clock, smtp_server):
    program_id = add_program(engine)
    kinds = ["application_receipt", "payment_due", "alliance_invitation"]
    ids = enqueue(engine, clock, [draft(i, k, program_id=program_id) for i, k in enumerate(kinds)])
    clock.advance(timedelta(days=2))  # sent two days after the notices were written

    report = send_pending(engine, SmtpMailer(smtp_server.settings()), clock=clock)

    assert report == SendReport(sent=3)
    received = {r.rcpt_tos[0]: r for r in smtp_server.handler.received}
    assert set(received) == {"inst0@example.cn", "inst1@example.cn", "inst2@example.cn"}
    stored = rows(engine)
    for i, (nid, kind) in enumerate(zip(ids, kinds, strict=True)):
        got = received[f"inst{i}@example.cn"]
        assert got.mail_from == "sanjin@ybj.shenyang.example.gov.cn"
        msg = parse(got.data)
        assert msg.get_content_type() == "multipart/alternative"
        # Program name from the program row; the letter's date is the day it was written.
        expected = render_notice(kind, {**SAMPLES[kind], "program_name": PROGRAM, "today": "2025-10-09",
                                        **({"amount": "1234.50"} if kind == "payment_due" else {})}, strict=True)
        assert msg["Subject"] == expected.subject
        # 8-bit parts arrive with the CRLF line ends SMTP carries (text's canonical form, RFC 2046 §4.1.1).
        assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == expected.text
        assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == pack_html(expected.html)
        assert msg["From"].addresses[0].display_name == "沈阳市医疗保障局"
        assert msg["To"].addresses[0].addr_spec == f"inst{i}@example.cn"
        assert msg["To"].addresses[0].display_name == SAMPLES[kind]["recipient_name"]
        assert msg["Message-ID"] == message_id_for(nid, f"{kind}:{i}", DOMAIN) == stored[nid].message_id
        row = stored[nid]
        assert (row.status, row.attempts, row.sent_at, row.last_error) == (NoticeStatus.SENT, 1, clock.now(), None)
        assert row.subject == expected.subject
    assert "2025年10月9日" in parse(received["inst0@example.cn"].data).get_body(("plain",)).get_content()
    assert "¥1,234.50" in parse(received["inst1@example.cn"].data)["Subject"]


def test_running_send_pending_twice_sends_nothing_twice(engine, clock, smtp_server):
    enqueue(engine, clock, [draft(i) for i in range(25)])
    mailer = SmtpMailer(smtp_server.settings())
    assert send_pending(engine, mailer, clock=clock, batch_size=10).sent == 25
    # Enqueueing the same causes again writes nothing new either.
    enqueue(engine, clock, [draft(i) for i in range(25)])
    assert send_pending(engine, mailer, clock=clock, batch_size=10) == SendReport()
    ids = [parse(r.data)["Message-ID"] for r in smtp_server.handler.received]
    assert len(ids) == len(set(ids)) == 25


def test_a_server_that_is_down_means_retries_with_backoff_then_dead(engine, clock, smtp_server):
    [nid] = enqueue(engine, clock, [draft(1)])
    mailer = down_mailer(smtp_server.settings)
    for attempt in range(1, 4):
        report = send_pending(engine, mailer, clock=clock, max_attempts=4)
        assert report == SendReport(retried=1)
        row = rows(engine)[nid]
        assert (row.status, row.attempts) == (NoticeStatus.PENDING, attempt)
        assert row.next_attempt_at == clock.now() + backoff(attempt)
        assert "connect" in (row.last_error or "")
        # Not due yet: an immediate rerun leaves it alone.
        assert send_pending(engine, mailer, clock=clock, max_attempts=4) == SendReport()
        clock.advance(backoff(attempt))
    assert backoff(1) < backoff(2) < backoff(3)
    assert send_pending(engine, mailer, clock=clock, max_attempts=4) == SendReport(dead=1)
    row = rows(engine)[nid]
    assert (row.status, row.attempts, row.next_attempt_at) == (NoticeStatus.DEAD, 4, None)
    assert (row.last_error or "").startswith("gave up after 4 attempts")


def test_421_is_retried_and_delivered_once_the_server_accepts(engine, clock, smtp_server):
    [busy, fine] = enqueue(engine, clock, [draft(1), draft(2)])
    smtp_server.handler.replies["inst1@example.cn"] = "421 4.7.0 Too many connections, try later"
    mailer = SmtpMailer(smtp_server.settings())
    assert send_pending(engine, mailer, clock=clock) == SendReport(sent=1, retried=1)
    assert "421" in (rows(engine)[busy].last_error or "")
    smtp_server.handler.replies.clear()
    clock.advance(backoff(1))
    assert send_pending(engine, mailer, clock=clock) == SendReport(sent=1)
    stored = rows(engine)
    assert stored[busy].status == stored[fine].status == NoticeStatus.SENT
    assert stored[busy].attempts == 2
    assert sorted(r.rcpt_tos[0] for r in smtp_server.handler.received) == ["inst1@example.cn", "inst2@example.cn"]


def test_550_is_dead_at_once_with_the_servers_reason(engine, clock, smtp_server):
    [gone, fine] = enqueue(engine, clock, [draft(1), draft(2)])
    smtp_server.handler.replies["inst1@example.cn"] = "550 5.1.1 <inst1@example.cn>: No such user"
    assert send_pending(engine, SmtpMailer(smtp_server.settings()), clock=clock) == SendReport(sent=1, dead=1)
    row = rows(engine)[gone]
    assert (row.status, row.attempts) == (NoticeStatus.DEAD, 1)
    assert "550" in row.last_error and "No such user" in row.last_error
    assert rows(engine)[fine].status == NoticeStatus.SENT


def test_a_crash_between_delivery_and_marking_is_resent_with_the_same_message_id(engine, clock, smtp_server):
    ids = enqueue(engine, clock, [draft(1), draft(2)])
    mailer = SmtpMailer(smtp_server.settings())
    with pytest.raises(RuntimeError, match="worker killed"):
        send_pending(engine, CrashAfterSend(mailer), clock=clock)
    first = {parse(r.data)["Message-ID"] for r in smtp_server.handler.received}
    assert len(first) == 2
    assert {r.status for r in rows(engine).values()} == {NoticeStatus.SENDING}

    # Within the lease another run must not touch them: the first sender may still be alive.
    clock.advance(LEASE - timedelta(seconds=1))
    assert send_pending(engine, mailer, clock=clock) == SendReport()

    clock.advance(timedelta(seconds=2))
    assert send_pending(engine, mailer, clock=clock) == SendReport(sent=2, reclaimed=2)
    received = [parse(r.data)["Message-ID"] for r in smtp_server.handler.received]
    assert len(received) == 4 and set(received[2:]) == first  # at-least-once on the wire, same Message-ID
    stored = rows(engine)
    assert {stored[i].message_id for i in ids} == first
    assert all((stored[i].status, stored[i].attempts) == (NoticeStatus.SENT, 2) for i in ids)
    assert send_pending(engine, mailer, clock=clock) == SendReport()  # and exactly once in the outbox


class CrashOnHandoff(CrashAfterSend):
    """Dies as it is handed its first message, before it reaches the server (a careful send has just
    counted that message's attempt)."""

    async def send_many(self, messages, **kwargs):
        if kwargs.get("careful") is not None:
            kwargs["careful"].starting(messages[0].ref)
        raise RuntimeError("worker killed while handing over")


def test_a_notice_that_keeps_killing_its_sender_ends_dead(engine, clock, smtp_server):
    [nid] = enqueue(engine, clock, [draft(1)])
    crashing = CrashOnHandoff(SmtpMailer(smtp_server.settings()))
    for _ in range(3):
        with pytest.raises(RuntimeError):
            send_pending(engine, crashing, clock=clock, max_attempts=3)
        clock.advance(LEASE + timedelta(seconds=1))
    assert send_pending(engine, crashing, clock=clock, max_attempts=3) == SendReport(dead=1)
    assert "lease expired" in rows(engine)[nid].last_error


def test_a_sender_that_lost_its_lease_cannot_overwrite_the_new_owners_result(engine, clock, smtp_server):
    ids = enqueue(engine, clock, [draft(1), draft(2)])
    rescuer = SmtpMailer(smtp_server.settings())
    rescue_reports = []

    class Stalled:
        """Hangs past its lease; meanwhile another worker reclaims and sends the chunk."""

        sender = rescuer.sender

        async def send_many(self, messages: list[OutgoingMessage], **_: object) -> list[SendOutcome]:
            clock.advance(LEASE + timedelta(minutes=1))
            # Called from inside this event loop, send_pending runs itself on a thread of its own.
            rescue_reports.append(send_pending(engine, rescuer, clock=clock))
            return [SendOutcome(m.ref, Delivery.TEMPORARY, "timeout")
                    for m in messages]

        async def aclose(self) -> None:
            return None

    report = send_pending(engine, Stalled(), clock=clock)
    assert rescue_reports == [SendReport(sent=2, reclaimed=2)]
    assert report == SendReport(skipped=2)
    stored = rows(engine)
    assert all(stored[i].status == NoticeStatus.SENT for i in ids)


def test_no_address_notices_are_kept_listed_and_sent_once_an_address_is_known(engine, clock, smtp_server):
    [nid, other] = enqueue(engine, clock, [draft(1, email=None), draft(2)])
    mailer = SmtpMailer(smtp_server.settings())
    assert send_pending(engine, mailer, clock=clock) == SendReport(sent=1)
    listed = list_no_address(engine)
    assert [n.id for n in listed] == [nid]
    assert listed[0].recipient_name == SAMPLES["application_receipt"]["recipient_name"]
    assert listed[0].context["institution_name"] == "沈阳市和平区南湖社区卫生服务中心"

    assert resend(engine, [nid, other], clock=clock) == 0  # still no address; a sent one is not resent
    assert rows(engine)[nid].status == NoticeStatus.NO_ADDRESS
    assert resend(engine, [nid], clock=clock, emails={nid: "nanhu@example.cn"}, actor="manager1") == 1
    assert list_no_address(engine) == []
    assert send_pending(engine, mailer, clock=clock) == SendReport(sent=1)
    assert smtp_server.handler.received[-1].rcpt_tos == ["nanhu@example.cn"]
    with Session(engine) as session:
        audit = session.scalars(select(AuditEvent).where(AuditEvent.entity == "notice")).all()
    assert [(a.entity_id, a.action, a.from_state, a.to_state, a.actor) for a in audit] == [
        (str(nid), "resend", "no_address", "pending", "manager1")
    ]


def test_a_dead_notice_can_be_resent_after_the_cause_is_fixed(engine, clock, smtp_server):
    [nid] = enqueue(engine, clock, [draft(1)])
    smtp_server.handler.replies["inst1@example.cn"] = "550 5.2.1 Mailbox disabled"
    mailer = SmtpMailer(smtp_server.settings())
    assert send_pending(engine, mailer, clock=clock).dead == 1
    smtp_server.handler.replies.clear()
    assert resend(engine, [nid], clock=clock) == 1
    row = rows(engine)[nid]
    assert (row.status, row.attempts, row.last_error) == (NoticeStatus.PENDING, 0, None)
    assert send_pending(engine, mailer, clock=clock).sent == 1
    assert parse(smtp_server.handler.received[0].data)["Message-ID"] == rows(engine)[nid].message_id


def test_a_notice_that_cannot_be_rendered_is_dead_not_retried(engine, clock, smtp_server):
    [nid] = enqueue(engine, clock, [NoticeDraft("x:1", "no_such_kind", "institution", "某机构", "a@example.cn")])
    assert send_pending(engine, SmtpMailer(smtp_server.settings()), clock=clock) == SendReport(dead=1)
    assert "render" in rows(engine)[nid].last_error
    assert smtp_server.handler.received == []


def test_chunks_share_the_pooled_connections_of_one_run(engine, clock, smtp_server):
    enqueue(engine, clock, [draft(i) for i in range(23)])
    mailer = SmtpMailer(smtp_server.settings(smtp_connections=2))

    async def run_inside_a_loop():  # as an async flow would
        try:
            return await send_pending_async(engine, mailer, clock=clock, batch_size=5)
        finally:
            await mailer.aclose()

    assert asyncio.run(run_inside_a_loop()) == SendReport(sent=23)
    assert len(smtp_server.handler.received) == 23
    assert len({r.peer for r in smtp_server.handler.received}) == 2  # five chunks, two connections


def test_send_chunk_does_one_chunk_per_call_until_nothing_is_due(engine, clock, smtp_server):
    enqueue(engine, clock, [draft(i) for i in range(12)])
    mailer = SmtpMailer(smtp_server.settings())
    reports = []
    while (report := send_chunk(engine, mailer, clock=clock, batch_size=5)).attempted:
        reports.append(report)
    assert [r.sent for r in reports] == [5, 5, 2]
    assert report == SendReport()


def test_many_notices_go_out_in_chunks_through_the_maildir_stand_in(engine, clock, tmp_path):
    enqueue(engine, clock, [draft(i, "payment_overdue") for i in range(23)])
    report = send_pending(engine, MaildirMailer(tmp_path / "maildir"), clock=clock, batch_size=5)
    assert report == SendReport(sent=23)
    assert len(list((tmp_path / "maildir" / "new").iterdir())) == 23


def test_two_concurrent_senders_deliver_every_notice_exactly_once(engine, clock, smtp_server):
    enqueue(engine, clock, [draft(i) for i in range(120)])
    reports: list[SendReport] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            reports.append(send_pending(engine, SmtpMailer(smtp_server.settings(smtp_connections=2)), clock=clock,
                                        batch_size=10))
        except BaseException as exc:  # surfaced below; a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.sent for r in reports) == 120
    ids = [parse(r.data)["Message-ID"] for r in smtp_server.handler.received]
    assert len(ids) == len(set(ids)) == 120
    with Session(engine) as session:
        assert session.scalar(select(func.count()).where(Notice.status == NoticeStatus.SENT)) == 120


async def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Scripted:
    """An in-memory mailer: every message gets the outcome `verdict(recipient)` gives, nothing is sent."""

    sender = "沈阳市医疗保障局 <sanjin@ybj.shenyang.example.gov.cn>"

    def __init__(self, verdict=lambda rcpt: Delivery.SENT, during=None):
        self.verdict, self.during, self.batches = verdict, during, []

    async def send_many(self, messages, **_):
        self.batches.append([m.ref for m in messages])
        if self.during is not None:
            effect = self.during(len(self.batches))
            if inspect.isawaitable(effect):
                await effect
        return [SendOutcome(m.ref, d, None if d is Delivery.SENT else f"{d.value} for test")
                for m in messages for d in [self.verdict(m.recipient)]]

    async def aclose(self):
        return None


def test_outcomes_of_a_large_chunk_are_recorded_in_bulk_each_on_its_own_row(engine, clock):
    # More rows than one bulk UPDATE carries, so the slices are exercised; every outcome kind at once.
    ids = enqueue(engine, clock, [draft(i) for i in range(2300)])
    with Session(engine) as session, session.begin():  # some have failed before: their backoff differs
        session.execute(update(Notice).where(Notice.id.in_(ids[:300])).values(attempts=2))

    def verdict(rcpt: str) -> Delivery:
        n = int(rcpt.removeprefix("inst").split("@")[0])
        return Delivery.TEMPORARY if n % 7 == 0 else Delivery.PERMANENT if n % 11 == 0 else Delivery.SENT

    report = send_pending(engine, Scripted(verdict), clock=clock, batch_size=2300, max_attempts=6)
    temporary = {i for i in range(2300) if i % 7 == 0}
    permanent = {i for i in range(2300) if i % 11 == 0} - temporary
    assert report == SendReport(sent=2300 - len(temporary) - len(permanent), retried=len(temporary),
                                dead=len(permanent))
    stored = rows(engine)
    for n, nid in enumerate(ids):
        row = stored[nid]
        attempts = 3 if n < 300 else 1
        assert row.attempts == attempts
        assert row.message_id == message_id_for(nid, f"application_receipt:{n}", DOMAIN)
        if n in temporary:
            assert (row.status, row.next_attempt_at) == (NoticeStatus.PENDING, clock.now() + backoff(attempts))
            assert row.last_error == "temporary for test" and row.subject is None
        elif n in permanent:
            assert (row.status, row.next_attempt_at, row.last_error) == (NoticeStatus.DEAD, None, "permanent for test")
        else:
            assert (row.status, row.sent_at, row.last_error, row.next_attempt_at) == (
                NoticeStatus.SENT, clock.now(), None, None)
            assert row.subject == render_notice("application_receipt", {**SAMPLES["application_receipt"],
                                                                        "program_name": ""}).subject


def test_while_one_chunk_is_sent_the_next_is_ready_and_a_crash_hands_it_back_unattempted(engine, clock):
    ids = enqueue(engine, clock, [draft(i) for i in range(12)])
    claimed_while_sending: list[set[NoticeStatus]] = []

    def statuses() -> set[NoticeStatus]:
        stored = rows(engine)
        return {stored[i].status for i in ids[5:10]}

    class Watching(Scripted):
        async def send_many(self, messages, **_):
            # The next chunk is claimed in a worker thread while this one is out; wait (bounded) to see it.
            deadline = time.monotonic() + 10
            while statuses() == {NoticeStatus.PENDING} and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return await super().send_many(messages)

    def during(batch: int) -> None:
        claimed_while_sending.append(statuses())
        if batch == 1:
            raise RuntimeError("worker killed while sending")

    with pytest.raises(RuntimeError, match="worker killed"):
        send_pending(engine, Watching(during=during), clock=clock, batch_size=5)
    assert claimed_while_sending == [{NoticeStatus.SENDING}]  # the second chunk was claimed and rendered
    stored = rows(engine)
    assert {stored[i].status for i in ids[:5]} == {NoticeStatus.SENDING}  # the crashed chunk waits for its lease
    # The chunk that never reached the mailer is due again at once, its attempt not counted.
    assert all((stored[i].status, stored[i].attempts, stored[i].next_attempt_at) == (NoticeStatus.PENDING, 0,
                                                                                       clock.now()) for i in ids[5:])
    assert send_pending(engine, Scripted(), clock=clock, batch_size=5) == SendReport(sent=7)


def fail_on_call(monkeypatch, name: str, n: int) -> None:
    """The `n`-th call of the sender's `name` fails as a lost database connection would; the others go through."""
    real = getattr(send_notices, name)
    calls: list[int] = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise OperationalError("UPDATE notice", {}, Exception("connection lost"))
        return real(*args, **kwargs)

    monkeypatch.setattr(send_notices, name, failing)


def test_a_delivered_chunk_is_recorded_when_the_next_ones_lease_cannot_be_restarted(engine, clock, monkeypatch):
    """Chunk 1 was accepted by the server; a database error on chunk 2's way out must not lose that record
    (chunk 1 would otherwise be sent again when its lease ran out), and chunk 2, never sent, goes back."""
    ids = enqueue(engine, clock, [draft(i) for i in range(10)])
    fail_on_call(monkeypatch, "renew_lease", 2)
    mailer = Scripted()
    with pytest.raises(OperationalError):
        send_pending(engine, mailer, clock=clock, batch_size=5)
    stored = rows(engine)
    assert mailer.batches == [ids[:5]]
    assert {stored[i].status for i in ids[:5]} == {NoticeStatus.SENT}
    assert all((stored[i].status, stored[i].attempts) == (NoticeStatus.PENDING, 0) for i in ids[5:])


def test_a_chunk_whose_record_failed_is_recorded_before_the_sender_gives_up(engine, clock, monkeypatch):
    """Recording chunk 1 fails once while chunk 2 is on the wire: both end recorded, neither waits for a lease."""
    ids = enqueue(engine, clock, [draft(i) for i in range(10)])
    fail_on_call(monkeypatch, "record_outcomes", 1)
    mailer = Scripted()
    with pytest.raises(OperationalError):
        send_pending(engine, mailer, clock=clock, batch_size=5)
    stored = rows(engine)
    assert mailer.batches == [ids[:5], ids[5:]]
    assert {stored[i].status for i in ids} == {NoticeStatus.SENT}
    assert send_pending(engine, Scripted(), clock=clock, batch_size=5) == SendReport()


def test_a_chunk_claimed_ahead_gets_a_full_lease_when_it_goes_out(engine, clock, smtp_server):
    """Chunk 2 is claimed while chunk 1 is sent; it must not lose its lease to a sender that wakes later."""
    ids = enqueue(engine, clock, [draft(i) for i in range(10)])
    rescuer = SmtpMailer(smtp_server.settings())
    rescues: list[SendReport] = []

    def status_of(chunk: list[int], status: NoticeStatus) -> bool:
        stored = rows(engine)
        return all(stored[i].status == status for i in chunk)

    async def during(batch: int) -> None:
        # Each chunk takes nearly a lease to send; simulated time moves once the sender's other work of
        # that moment is done: chunk 2 claimed (while chunk 1 is out), then chunk 1 recorded (while 2 is).
        first = mailer.batches[0]
        if batch == 1:
            await wait_until(lambda: status_of([i for i in ids if i not in first], NoticeStatus.SENDING))
        else:
            await wait_until(lambda: status_of(first, NoticeStatus.SENT))
        clock.advance(LEASE - timedelta(minutes=1))
        if batch == 2:  # another sender looks for lost leases while chunk 2 is out
            rescues.append(send_pending(engine, rescuer, clock=clock))

    mailer = Scripted(during=during)
    assert send_pending(engine, mailer, clock=clock, batch_size=5) == SendReport(sent=10)
    assert rescues == [SendReport()]  # nothing looked lost: chunk 2's lease started when it was sent
    assert smtp_server.handler.received == []
    assert sorted(ref for batch in mailer.batches for ref in batch) == sorted(rows(engine))


def lose_sender(engine, clock, smtp_server, drafts) -> list[int]:
    """The drafts delivered by a sender that dies before recording them, then reclaimed once its lease ran out."""
    ids = enqueue(engine, clock, drafts)
    with pytest.raises(RuntimeError, match="worker killed"):
        send_pending(engine, CrashAfterSend(SmtpMailer(smtp_server.settings())), clock=clock)
    clock.advance(LEASE + timedelta(seconds=1))
    return ids


def test_notices_a_lost_sender_may_have_delivered_are_resent_one_by_one_each_recorded_right_after_the_server_accepts_it(
        engine, clock, smtp_server):
    ids = lose_sender(engine, clock, smtp_server, [draft(1), draft(2), draft(3)])
    assert all(n.maybe_delivered for n in rows(engine).values())
    handler = smtp_server.handler
    statuses_at_each_delivery: list[list[NoticeStatus]] = []
    original = handler.handle_DATA

    async def handle_data(server, session, envelope):
        stored = rows(engine)
        statuses_at_each_delivery.append([stored[i].status for i in ids])
        return await original(server, session, envelope)

    handler.handle_DATA = handle_data
    assert send_pending(engine, SmtpMailer(smtp_server.settings()), clock=clock) == SendReport(sent=3, reclaimed=3)
    # Never recorded before the server has it: each earlier resend is committed sent before the next one starts.
    S, G = NoticeStatus.SENDING, NoticeStatus.SENT
    assert statuses_at_each_delivery == [[S, S, S], [G, S, S], [G, G, S]]
    resent = handler.received[3:]
    assert len({r.peer for r in resent}) == 1  # one connection, one message at a time
    stored = rows(engine)
    assert [(stored[i].status, stored[i].attempts) for i in ids] == [(NoticeStatus.SENT, 2)] * 3
    received = [parse(r.data)["Message-ID"] for r in handler.received]
    # Twice each under the same Message-ID: first concurrently (in any order), then one by one in order.
    assert sorted(received[:3]) == sorted(received[3:]) and received[3:] == [stored[i].message_id for i in ids]


def test_a_careful_resend_the_server_refuses_is_retried_later_and_stays_careful(engine, clock, smtp_server):
    [nid] = lose_sender(engine, clock, smtp_server, [draft(1)])
    smtp_server.handler.stall = {"inst1@example.cn"}  # answers the end of the message with 451
    report = send_pending(engine, SmtpMailer(smtp_server.settings(), timeout=10), clock=clock)
    assert report == SendReport(retried=1, reclaimed=1)
    row = rows(engine)[nid]
    assert (row.status, row.sent_at, row.attempts, row.maybe_delivered) == (NoticeStatus.PENDING, None, 2, True)
    assert row.next_attempt_at == clock.now() + backoff(2) and "451" in (row.last_error or "")
    assert not row.second_copy_out  # refused: that copy never arrived, so the next resend may go out


class DiesAfterTheEnd(CrashAfterSend):
    """A careful resend killed right after its end went out, before the server's answer is read."""

    async def send_many(self, messages, **kwargs):
        careful = kwargs.get("careful")
        if careful is None:
            return await self.inner.send_many(messages, **kwargs)

        class Dying:
            def __getattr__(self, name):
                return getattr(careful, name)

            def ended(self, ref):
                careful.ended(ref)
                raise RuntimeError("worker killed after the end")

        return await self.inner.send_many(messages, **{**kwargs, "careful": Dying()})


def test_a_notice_whose_careful_resend_went_out_before_its_sender_was_lost_is_never_sent_a_third_time(
        engine, clock, smtp_server):
    [nid] = lose_sender(engine, clock, smtp_server, [draft(1)])  # copy 1 arrived, unrecorded
    with pytest.raises(RuntimeError, match="after the end"):
        send_pending(engine, DiesAfterTheEnd(SmtpMailer(smtp_server.settings())), clock=clock)
    row = rows(engine)[nid]
    assert (row.status, row.second_copy_out) == (NoticeStatus.SENDING, True)
    clock.advance(LEASE + timedelta(seconds=1))
    assert send_pending(engine, SmtpMailer(smtp_server.settings()), clock=clock) == SendReport(reclaimed=0,
                                                                                                unconfirmed=1)
    row = rows(engine)[nid]
    assert (row.status, row.sent_at) == (NoticeStatus.SENT, clock.now())
    assert "not confirmed" in (row.last_error or "") and "未确认" in (row.last_error or "")
    assert send_pending(engine, SmtpMailer(smtp_server.settings()), clock=clock) == SendReport()
    received = [parse(r.data)["Message-ID"] for r in smtp_server.handler.received]
    assert received == [row.message_id] * 2  # the first copy and the careful one, never a third


def test_a_careful_resend_the_server_leaves_unanswered_is_settled_sent_unconfirmed_and_never_sent_again(
        engine, clock, smtp_server):
    [nid] = lose_sender(engine, clock, smtp_server, [draft(1)])
    original = smtp_server.handler.handle_DATA

    async def silent(server, session, envelope):  # takes the message, answers too late
        await original(server, session, envelope)
        await asyncio.sleep(2)
        return "250 too late"

    smtp_server.handler.handle_DATA = silent
    report = send_pending(engine, SmtpMailer(smtp_server.settings(), timeout=0.5), clock=clock)
    assert report == SendReport(reclaimed=1, unconfirmed=1)
    row = rows(engine)[nid]
    assert (row.status, row.attempts, row.second_copy_out) == (NoticeStatus.SENT, 2, True)
    assert "did not answer its resend" in (row.last_error or "")
    clock.advance(LEASE + timedelta(days=1))
    smtp_server.handler.handle_DATA = original
    assert send_pending(engine, SmtpMailer(smtp_server.settings()), clock=clock) == SendReport()
    assert len(smtp_server.handler.received) == 2


def row_is_locked(engine, notice_id):
    with engine.connect() as conn:
        try:
            conn.exec_driver_sql(f"SELECT id FROM notice WHERE id = {int(notice_id)} FOR UPDATE NOWAIT")
        except OperationalError:
            return True
        return False


class WatchesTheMark(CrashAfterSend):
    """Reads, from another connection, whether a careful resend's mark is committed just before its end goes out."""

    def __init__(self, inner, engine):
        super().__init__(inner)
        self.engine, self.before_end, self.locked_before_end = engine, [], []

    async def send_many(self, messages, **kwargs):
        careful = kwargs.get("careful")
        if careful is None:
            return await self.inner.send_many(messages, **kwargs)
        watcher = self

        class Watching:
            def __getattr__(self, name):
                return getattr(careful, name)

            def ending(self, ref):
                going = careful.ending(ref)
                watcher.before_end.append(rows(watcher.engine)[ref].second_copy_out)
                if watcher.engine.dialect.name == "postgresql":
                    watcher.locked_before_end.append(row_is_locked(watcher.engine, ref))
                return going

        return await self.inner.send_many(messages, **{**kwargs, "careful": Watching()})


def test_a_careful_resends_mark_is_committed_at_its_databases_point_of_no_return(engine, clock, smtp_server):
    """SQLite's commit is beyond a kill once it returns, so the mark is committed before the end goes out;
    PostgreSQL's once its bytes leave, so only the mark's COMMIT follows the end (the UPDATE ran before it,
    uncommitted): a kill between the two is then a matter of microseconds, not of a statement's round trip."""
    [nid] = lose_sender(engine, clock, smtp_server, [draft(1)])
    mailer = WatchesTheMark(SmtpMailer(smtp_server.settings()), engine)
    assert send_pending(engine, mailer, clock=clock) == SendReport(sent=1, reclaimed=1)
    assert mailer.before_end == [engine.dialect.name == "sqlite"]
    # PostgreSQL: the mark's UPDATE has run (the row is held) and waits only for its COMMIT.
    assert mailer.locked_before_end == ([True] if engine.dialect.name == "postgresql" else [])
    row = rows(engine)[nid]
    assert (row.status, row.second_copy_out, row.attempts) == (NoticeStatus.SENT, True, 2)
    assert len(smtp_server.handler.received) == 2


def test_a_lost_senders_mark_committed_while_its_notice_is_reclaimed_keeps_it_from_being_sent_a_third_time(
        engine, clock, smtp_server):
    """Issue #18, session 12 (PostgreSQL): a sender dies with its careful resend's mark UPDATEd and its COMMIT on
    the wire; the server commits it while the next sender reclaims. The reclaim's first UPDATE (settle marked rows
    unconfirmed) read the row unmarked; the put-back waited for the row, re-read it marked and put it back
    `pending` anyway — resent, a third copy. Now the put-back skips a marked row and the next reclaim settles it."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: a reclaim never waits for another sender's uncommitted mark")
    [nid] = lose_sender(engine, clock, smtp_server, [draft(1)])  # copy 1 arrived, unrecorded; the lease ran out
    t = Notice.__table__
    reclaimed: list[tuple[int, int, int]] = []
    with engine.connect() as dying:  # the lost sender's session: its mark UPDATEd, not yet committed
        dying.execute(update(t).where(t.c.id == nid).values(second_copy_out=True))
        holder = dying.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        reclaimer = threading.Thread(target=lambda: reclaimed.append(
            reclaim_expired(engine, clock=clock, max_attempts=6)))
        reclaimer.start()
        deadline = time.monotonic() + 10
        while not waits_for(engine, holder) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert reclaimer.is_alive()  # waiting for the row
        dying.commit()  # the COMMIT that was on the wire
    reclaimer.join(10)
    assert reclaimed == [(0, 0, 0)]  # (1, 0, 0) before: put back `pending` with its mark set
    row = rows(engine)[nid]
    assert (row.status, row.second_copy_out) == (NoticeStatus.SENDING, True)
    assert send_pending(engine, SmtpMailer(smtp_server.settings()), clock=clock) == SendReport(unconfirmed=1)
    assert rows(engine)[nid].status == NoticeStatus.SENT
    assert len(smtp_server.handler.received) == 1  # the marked resend is never sent again (2 before)


def waits_for(engine, holder) -> bool:
    """Whether some session waits for a lock the backend `holder` holds."""
    with engine.connect() as conn:
        return bool(conn.exec_driver_sql(
            f"SELECT count(*) FROM pg_stat_activity WHERE {int(holder)} = ANY(pg_blocking_pids(pid))").scalar())


def test_a_notice_claimed_with_its_careful_resends_mark_set_is_settled_unconfirmed_and_not_sent(
        engine, clock, smtp_server):
    """However a marked notice came back to `pending` (the reclaim above, before its fix), it is not handed over a
    third time: claimed, it is settled sent, not confirmed, with no message (a careful resend before the fix)."""
    [nid] = lose_sender(engine, clock, smtp_server, [draft(1)])
    t = Notice.__table__
    with engine.begin() as conn:
        conn.execute(update(t).where(t.c.id == nid).values(status=NoticeStatus.PENDING, next_attempt_at=clock.now(),
                                                            second_copy_out=True))
    assert send_pending(engine, SmtpMailer(smtp_server.settings()), clock=clock) == SendReport(unconfirmed=1)
    row = rows(engine)[nid]
    assert (row.status, row.second_copy_out) == (NoticeStatus.SENT, True)
    assert "an earlier resend had gone out" in (row.last_error or "")
    assert len(smtp_server.handler.received) == 1

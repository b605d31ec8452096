import asyncio
import email
import email.policy
import mailbox
import time

from notifications.render import RenderedNotice, build_message, pack_html, render_notice, seven_bit
from notifications.smtp import (
    Delivery,
    MaildirMailer,
    Mailer,
    OutgoingMessage,
    SendOutcome,
    SmtpMailer,
    classify_code,
    loop_factory,
)
from notifications.smtp import run as smtp_run
from tests.notifications.conftest import free_port
from tests.notifications.samples import sample

FROM = "sanjin@ybj.shenyang.example.gov.cn"


def messages(n: int, *, to: str = "inst{}@example.cn") -> list[OutgoingMessage]:
    rendered = render_notice("gate_waiting", sample("gate_waiting"), strict=True)
    out = []
    for i in range(n):
        rcpt = to.format(i)
        mid = f"<test.{i}@ybj.shenyang.example.gov.cn>"
        data = build_message({"email": rcpt, "recipient_name": "刘洋"}, rendered, FROM, mid)
        out.append(OutgoingMessage(i, FROM, rcpt, data, mid))
    return out


def run(coro):
    return asyncio.run(coro)


def test_both_mailers_satisfy_the_protocol(tmp_path, smtp_server):
    mailers: list[Mailer] = [SmtpMailer(smtp_server.settings()), MaildirMailer(tmp_path / "mail")]
    assert all(m.sender for m in mailers)


def test_reply_codes_are_classified_by_their_class():
    assert classify_code(421) is classify_code(450) is classify_code(451) is Delivery.TEMPORARY
    assert classify_code(550) is classify_code(553) is classify_code(554) is Delivery.PERMANENT
    assert classify_code(-1) is Delivery.TEMPORARY  # a garbled reply is not a verdict on the message


def test_messages_go_over_a_bounded_pool_of_reused_connections(smtp_server):
    mailer = SmtpMailer(smtp_server.settings(smtp_connections=3))

    async def scenario():
        first = await mailer.send_many(messages(30))
        second = await mailer.send_many(messages(30))
        await mailer.aclose()
        return first + second

    outcomes = run(scenario())
    assert [o.delivery for o in outcomes] == [Delivery.SENT] * 60
    got = smtp_server.handler.received
    assert len(got) == 60
    # Three connections carried all 60 messages, the second call reusing the first call's connections.
    assert len({r.peer for r in got}) == 3
    assert {r.peer for r in got[:30]} == {r.peer for r in got[30:]}


def test_outcomes_come_back_in_order_with_421_temporary_and_550_permanent(smtp_server):
    smtp_server.handler.replies = {
        "inst2@example.cn": "421 4.7.0 Try again later",
        "inst4@example.cn": "450 4.2.1 Mailbox busy",
        "inst5@example.cn": "550 5.1.1 No such user",
        "inst7@example.cn": "553 5.1.3 Bad recipient address syntax",
    }
    mailer = SmtpMailer(smtp_server.settings(smtp_connections=2))
    outcomes = run(mailer.send_many(messages(9)))
    run(mailer.aclose())
    assert [o.ref for o in outcomes] == list(range(9))
    by_ref = {o.ref: o for o in outcomes}
    assert (by_ref[2].delivery, by_ref[2].code) == (Delivery.TEMPORARY, 421)
    assert (by_ref[4].delivery, by_ref[4].code) == (Delivery.TEMPORARY, 450)
    assert (by_ref[5].delivery, by_ref[5].code) == (Delivery.PERMANENT, 550)
    assert "No such user" in (by_ref[5].detail or "")
    assert (by_ref[7].delivery, by_ref[7].code) == (Delivery.PERMANENT, 553)
    assert {o.ref for o in outcomes if o.delivery is Delivery.SENT} == {0, 1, 3, 6, 8}
    assert sorted(r.rcpt_tos[0] for r in smtp_server.handler.received) == [
        f"inst{i}@example.cn" for i in (0, 1, 3, 6, 8)
    ]


def test_a_server_that_is_down_gives_temporary_failures_quickly():
    settings_port = free_port()  # nothing listens here

    class Down:
        smtp_host, smtp_port, smtp_starttls, smtp_ssl = "127.0.0.1", settings_port, False, False
        smtp_username = smtp_password = None
        smtp_sender, smtp_connections, smtp_rate_per_second = FROM, 4, 0.0

    mailer = SmtpMailer(Down(), timeout=5)
    started = time.perf_counter()
    outcomes = run(mailer.send_many(messages(50)))
    assert time.perf_counter() - started < 5
    assert {o.delivery for o in outcomes} == {Delivery.TEMPORARY}
    assert all("onnect" in (o.detail or "") for o in outcomes)


def test_a_malformed_address_is_permanent_and_never_reaches_the_server(smtp_server):
    bad = [OutgoingMessage(m.ref, m.sender, rcpt, m.data, m.message_id)
           for m, rcpt in zip(messages(3), ["no-at-sign.example.cn", "two@@example.cn", "a b@example.cn"],
                              strict=True)]
    outcomes = run(SmtpMailer(smtp_server.settings()).send_many(bad))
    assert {o.delivery for o in outcomes} == {Delivery.PERMANENT}
    assert smtp_server.handler.received == []


def test_a_non_ascii_mailbox_the_server_cannot_take_is_permanent(smtp_server):
    msg = messages(1)[0]
    outcomes = run(SmtpMailer(smtp_server.settings()).send_many(
        [OutgoingMessage(1, msg.sender, "张伟@卫生院.example.cn", msg.data, msg.message_id)]))
    assert outcomes[0].delivery is Delivery.PERMANENT


def test_a_dropped_pooled_connection_is_reopened_and_the_message_still_goes(smtp_server):
    mailer = SmtpMailer(smtp_server.settings(smtp_connections=1))

    async def scenario():
        first = await mailer.send_many(messages(2))
        await asyncio.to_thread(smtp_server.restart)  # the server drops our idle connection
        second = await mailer.send_many(messages(2))
        await mailer.aclose()
        return first, second

    first, second = run(scenario())
    assert [o.delivery for o in first + second] == [Delivery.SENT] * 4
    peers = [r.peer for r in smtp_server.handler.received]
    assert len(peers) == 4 and peers[0] == peers[1] and peers[2] == peers[3] and peers[1] != peers[2]


def test_the_rate_limit_spaces_messages_across_all_connections(smtp_server):
    mailer = SmtpMailer(smtp_server.settings(smtp_connections=4, smtp_rate_per_second=50))
    started = time.perf_counter()
    outcomes = run(mailer.send_many(messages(11)))
    elapsed = time.perf_counter() - started
    assert [o.delivery for o in outcomes] == [Delivery.SENT] * 11
    assert elapsed >= 10 / 50 * 0.9


def test_the_mailer_can_be_used_again_from_a_new_event_loop(smtp_server):
    mailer = SmtpMailer(smtp_server.settings(smtp_connections=2))
    assert {o.delivery for o in run(mailer.send_many(messages(3)))} == {Delivery.SENT}
    # No aclose() in between: the first loop is gone with its connections; the mailer must not care.
    assert {o.delivery for o in run(mailer.send_many(messages(3)))} == {Delivery.SENT}
    run(mailer.aclose())
    assert len(smtp_server.handler.received) == 6


def test_maildir_mailer_stores_the_exact_bytes(tmp_path):
    mailer = MaildirMailer(tmp_path / "maildir", sender=FROM)
    msgs = messages(3)
    outcomes = run(mailer.send_many(msgs))
    assert [o.delivery for o in outcomes] == [Delivery.SENT] * 3
    box = mailbox.Maildir(tmp_path / "maildir", create=False)
    stored = sorted(email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)["Message-ID"]
                    for k in box.iterkeys())
    assert stored == sorted(m.message_id for m in msgs)


class Steps:
    """A careful send's log (CarefulLog) noting each step with what the server had received by then."""

    def __init__(self, received, withdraw=()):
        self.received, self.withdraw, self.steps = received, set(withdraw), []

    def note(self, step, ref):
        self.steps.append((step, ref, len(self.received())))

    def starting(self, ref):
        self.note("start", ref)

    def ending(self, ref):
        self.note("ending", ref)
        return ref not in self.withdraw

    def ended(self, ref):
        self.steps.append(("ended", ref, None))  # the server (a thread here) may or may not have read it yet

    def settled(self, outcome, ending):
        self.note(f"{outcome.delivery.value}{'' if ending else ' (no end)'}", outcome.ref)


def test_a_careful_send_reports_each_step_before_the_next_and_each_outcome_before_the_next_message(smtp_server):
    handler = smtp_server.handler
    mailer = SmtpMailer(smtp_server.settings(smtp_connections=4), timeout=10)
    handler.replies = {"inst1@example.cn": "550 5.1.1 No such user"}
    log = Steps(lambda: handler.received, withdraw={3})
    outcomes = run(mailer.send_many(messages(5), careful=log))
    run(mailer.aclose())
    assert [o.delivery for o in outcomes] == [Delivery.SENT, Delivery.PERMANENT, Delivery.SENT, Delivery.TEMPORARY,
                                              Delivery.SENT]
    # The end goes out only after `ending`; the server has the message only once its end went out; each outcome
    # is reported once the server had the message and before the next one starts; a refused recipient never
    # reaches the end; a withdrawn message never arrives.
    assert log.steps == [("start", 0, 0), ("ending", 0, 0), ("ended", 0, None), ("sent", 0, 1),
                         ("start", 1, 1), ("permanent (no end)", 1, 1),
                         ("start", 2, 1), ("ending", 2, 1), ("ended", 2, None), ("sent", 2, 2),
                         ("start", 3, 2), ("ending", 3, 2), ("temporary (no end)", 3, 2),
                         ("start", 4, 2), ("ending", 4, 2), ("ended", 4, None), ("sent", 4, 3)]
    assert [r.rcpt_tos for r in handler.received] == [["inst0@example.cn"], ["inst2@example.cn"], ["inst4@example.cn"]]
    assert len({r.peer for r in handler.received}) <= 2  # one connection (a second after the withdrawn message)


def test_a_careful_message_whose_end_the_server_leaves_unanswered_says_so(smtp_server):
    smtp_server.handler.stall = {"inst0@example.cn"}
    mailer = SmtpMailer(smtp_server.settings(smtp_connections=1), timeout=0.5)
    log = Steps(lambda: smtp_server.handler.received)
    outcomes = run(mailer.send_many(messages(1), careful=log))
    run(mailer.aclose())
    assert [(o.delivery, o.maybe_delivered) for o in outcomes] == [(Delivery.TEMPORARY, True)]
    assert [step for step, _, _ in log.steps] == ["start", "ending", "ended", "temporary"]  # the end went out


def test_the_maildir_writes_each_careful_message_before_reporting_it(tmp_path):
    mailer = MaildirMailer(tmp_path / "maildir", sender=FROM)
    log = Steps(lambda: list((tmp_path / "maildir" / "new").iterdir()) if (tmp_path / "maildir" / "new").exists()
                else [])
    outcomes = run(mailer.send_many(messages(2), careful=log))
    assert [o.delivery for o in outcomes] == [Delivery.SENT] * 2
    assert log.steps == [("start", 0, 0), ("ending", 0, 0), ("ended", 0, None), ("sent", 0, 1),
                         ("start", 1, 1), ("ending", 1, 1), ("ended", 1, None), ("sent", 1, 2)]


def test_content_arrives_byte_for_byte_even_with_lines_that_start_with_a_dot(smtp_server):
    # RFC 5321 §4.5.2: the sender doubles a leading dot, the server removes it; a lone "." would end DATA.
    data = b"Subject: dots\n\n.\n..two\n.leading\nmiddle . dot\n"
    msg = OutgoingMessage(1, FROM, "inst1@example.cn", data, "<dots@example.cn>")
    mailer = SmtpMailer(smtp_server.settings())
    assert run(mailer.send_many([msg])) == [SendOutcome(1, Delivery.SENT)]
    run(mailer.aclose())
    assert smtp_server.handler.received[0].data == data.replace(b"\n", b"\r\n")


def test_after_a_refused_recipient_the_same_connection_carries_the_next_message(smtp_server):
    # The refused envelope is reset (RSET), not left open to swallow the next MAIL FROM.
    smtp_server.handler.replies = {"inst0@example.cn": "550 5.1.1 No such user"}
    mailer = SmtpMailer(smtp_server.settings(smtp_connections=1))
    outcomes = run(mailer.send_many(messages(3)))
    run(mailer.aclose())
    assert [o.delivery for o in outcomes] == [Delivery.PERMANENT, Delivery.SENT, Delivery.SENT]
    got = smtp_server.handler.received
    assert [r.rcpt_tos for r in got] == [["inst1@example.cn"], ["inst2@example.cn"]]
    assert len({r.peer for r in got}) == 1


def test_a_server_that_stops_answering_mid_message_is_temporary_and_the_connection_is_replaced(smtp_server):
    smtp_server.handler.stall = {"inst0@example.cn"}
    mailer = SmtpMailer(smtp_server.settings(smtp_connections=1), timeout=0.5)
    started = time.perf_counter()
    outcomes = run(mailer.send_many(messages(2)))
    run(mailer.aclose())
    assert time.perf_counter() - started < 3  # the deadline, not the server, decided
    assert [o.delivery for o in outcomes] == [Delivery.TEMPORARY, Delivery.SENT]
    assert "Timeout" in (outcomes[0].detail or "")
    # The server had the whole message and never answered: it may have accepted it, so the retry is careful
    # (one at a time, recorded right after the server accepts it: no crash can then make it arrive a third time).
    assert [o.maybe_delivered for o in outcomes] == [True, False]
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [["inst1@example.cn"]]


def _parts(raw):
    """Each part's encoding and text; over SMTP an 8-bit part's lines end in CRLF, read here as "\\n"."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return [(p["Content-Transfer-Encoding"], p.get_content().replace("\r\n", "\n")) for p in msg.iter_parts()]


# Lines of both parts start with a dot, one is a lone dot: the sender must double them or DATA ends early.
DOTTED = RenderedNotice("点号开头的行", ".\n.第二行以点开头\n..两个点\n正文。\n",
                        "<p>一</p>\n.<b>点</b>\n" + "<i>填充</i>" * 70 + "\n.\n<p>尾</p>\n")


def test_8bit_parts_arrive_byte_for_byte_through_aiosmtpd_even_with_lines_that_start_with_a_dot(smtp_server):
    data = build_message({"email": "inst1@example.cn", "recipient_name": "刘洋"}, DOTTED, FROM, "<dots@example.cn>")
    assert b"\n." in data and b"\n. <p>" in data and not data.isascii()  # a packed HTML line starts with "."
    msg = OutgoingMessage(1, FROM, "inst1@example.cn", data, "<dots@example.cn>")
    mailer = SmtpMailer(smtp_server.settings())
    assert run(mailer.send_many([msg])) == [SendOutcome(1, Delivery.SENT)]
    run(mailer.aclose())
    got = smtp_server.handler.received[0]
    assert "BODY=8BITMIME" in got.mail_options  # RFC 6152: announced, as the server offered it
    assert got.data == data.replace(b"\n", b"\r\n")
    assert _parts(got.data) == [("8bit", DOTTED.text), ("8bit", pack_html(DOTTED.html))]


def test_a_server_without_8bitmime_gets_the_same_message_in_base64(smtp_server):
    smtp_server.handler.offer_8bitmime = False
    data = build_message({"email": "inst1@example.cn", "recipient_name": "刘洋"}, DOTTED, FROM, "<dots@example.cn>")
    mailer = SmtpMailer(smtp_server.settings())
    assert run(mailer.send_many([OutgoingMessage(1, FROM, "inst1@example.cn", data, "<dots@example.cn>")])) == [
        SendOutcome(1, Delivery.SENT)]
    run(mailer.aclose())
    got = smtp_server.handler.received[0]
    assert not any(o.startswith("BODY=") for o in got.mail_options)
    assert got.data.isascii()
    assert got.data == seven_bit(data).replace(b"\n", b"\r\n")
    assert _parts(got.data) == [("base64", DOTTED.text), ("base64", pack_html(DOTTED.html))]


def test_the_mail_loop_is_uvloop_when_installed():
    import uvloop

    async def loop_type():
        return type(asyncio.get_running_loop())

    assert loop_factory() is uvloop.new_event_loop
    assert smtp_run(loop_type()) is uvloop.Loop


class Stalls(Steps):
    """A careful log that, at `ended`, stalls before returning (as the scheduler may, running the server first)
    and notes what the server had by the end of the stall."""

    def ended(self, ref):
        deadline = time.monotonic() + 0.1  # well under the 200 ms TCP_CORK lets data wait
        before = len(self.received())
        while time.monotonic() < deadline and len(self.received()) == before:
            time.sleep(0.005)  # the server's thread runs meanwhile
        self.steps.append(("ended", ref, len(self.received())))


def test_a_careful_messages_end_reaches_the_server_only_after_its_log_has_recorded_it(smtp_server):
    """Issue #18, session 12: the caller commits the resend's mark in `ended`, right after the end is written. The
    end used to leave at once: writing it woke the server, and a loaded machine could run the server while this
    process waited to send the mark's COMMIT — a kill then left a copy delivered and unmarked (a third copy on
    PostgreSQL). Now the end waits in the kernel (TCP_CORK) until `ended` returns; the server never has it before."""
    mailer = SmtpMailer(smtp_server.settings(smtp_connections=1), timeout=10)
    log = Stalls(lambda: smtp_server.handler.received)
    outcomes = run(mailer.send_many(messages(2), careful=log))
    run(mailer.aclose())
    assert [o.delivery for o in outcomes] == [Delivery.SENT] * 2
    assert [s for s in log.steps if s[0] == "ended"] == [("ended", 0, 0), ("ended", 1, 1)]  # (…, 1), (…, 2) before
    assert len(smtp_server.handler.received) == 2


def test_a_connection_reset_after_a_messages_end_may_have_delivered_it_and_it_is_not_resent(smtp_server, monkeypatch):
    """A reset (ConnectionResetError, not aiosmtplib's own error) after the end went out on a reused connection:
    the server may have the message. It used to be taken for an idle connection the server had dropped and sent
    again at once on a new one (two copies from one attempt, and a careful resend's two marked ends)."""
    from aiosmtplib.protocol import SMTPProtocol

    original_write, original_read = SMTPProtocol.write, SMTPProtocol.read_response
    state = {"end": False, "resets": 0}

    def write(self, data):
        state["end"] = data.endswith(b"\r\n.\r\n") or data == b".\r\n"
        return original_write(self, data)

    async def read_response(self, timeout=None):
        reply = await original_read(self, timeout=timeout)
        if state["end"] and state["resets"] == 0 and len(smtp_server.handler.received) == 2:
            state["resets"] += 1
            raise ConnectionResetError(104, "Connection reset by peer")
        return reply

    monkeypatch.setattr(SMTPProtocol, "write", write)
    monkeypatch.setattr(SMTPProtocol, "read_response", read_response)
    mailer = SmtpMailer(smtp_server.settings(smtp_connections=1), timeout=10)
    outcomes = run(mailer.send_many(messages(3)))
    run(mailer.aclose())
    assert state["resets"] == 1
    assert [(o.delivery, o.maybe_delivered) for o in outcomes] == [
        (Delivery.SENT, False), (Delivery.TEMPORARY, True), (Delivery.SENT, False)]
    # Message 1 arrived once (3 arrivals, 2 of them message 1 before), then message 2 on a new connection.
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [["inst0@example.cn"], ["inst1@example.cn"],
                                                                  ["inst2@example.cn"]]

"""Delivering finished messages: one small `Mailer` interface, an SMTP pool and an offline maildir stand-in.

Senders never raise for a single bad message; they report an outcome per message so the outbox can
decide, in one transaction, which notices are sent, retried or dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mailbox
import re
import socket
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiosmtplib
from aiosmtplib.protocol import normalize_message_line_endings

from notifications.render import seven_bit

log = logging.getLogger(__name__)

# Deliberately plain: enough to refuse what no server would accept before a network round trip;
# the server stays the judge of the rest.
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@(?![.-])(?!.*\.\.)[^@\s<>()\[\],;:\"]+(?<![.-])$")


class Delivery(StrEnum):
    SENT = "sent"
    TEMPORARY = "temporary"  # worth retrying later: the server or the network said "not now"
    PERMANENT = "permanent"  # retrying cannot help: the address or the content was refused


@dataclass(frozen=True)
class OutgoingMessage:
    """A message ready for the wire; `ref` is the caller's handle (the notice id)."""

    ref: int
    sender: str  # envelope sender (MAIL FROM), a bare address
    recipient: str  # envelope recipient (RCPT TO), a bare address
    data: bytes
    message_id: str


@dataclass(frozen=True)
class SendOutcome:
    ref: int
    delivery: Delivery
    detail: str | None = None
    code: int | None = None
    # TEMPORARY, but the whole message was handed over and no answer came: the server may have accepted it.
    maybe_delivered: bool = False


class _Unanswered(Exception):
    """The message's end went out and no reply came (a timeout, a dropped connection) or one we cannot read."""


class _Withdrawn(Exception):
    """A careful send's caller withdrew the message before its end (`CarefulLog.ending` returned False)."""


class CarefulLog(Protocol):
    """What a careful send tells its caller about each message, synchronously, at each step, so the caller can
    commit there before the send goes on (tasks/outbox/careful.py's `CarefulRecord`)."""

    def starting(self, ref: int) -> object:
        """The message is about to start (before MAIL)."""
        ...

    def ending(self, ref: int) -> bool:
        """All but the message's end (the final dot) is with the server; the end is written right after this
        returns True, with no await in between. False withdraws the message: its end is never written."""
        ...

    def ended(self, ref: int) -> object:
        """The end has just been written to the socket (before the server's reply is awaited)."""
        ...

    def settled(self, outcome: SendOutcome, ending: bool) -> object:
        """The message's outcome, right after the server's reply and before the next message starts. `ending`:
        `ending` had returned True. A refusal, or a failure before the end was written, means it did not arrive;
        a `maybe_delivered` outcome that it may have."""
        ...


class Mailer(Protocol):
    """What the outbox needs from a sender; SMTP in production, a maildir offline, a fake in tests."""

    @property
    def sender(self) -> str:
        """The From address (may carry a display name); Message-IDs take their domain from it."""
        ...

    async def send_many(self, messages: list[OutgoingMessage], *, on_accepted: OnAccepted | None = None,
                        careful: CarefulLog | None = None) -> list[SendOutcome]:
        """One outcome per message, in the same order; never raises for a single message's failure.

        `on_accepted(ref)` is called as soon as the server accepted a message (SMTP: its 250 reply to the
        message's end; a maildir: the file written), so the caller can record progress before the end.
        With `careful`, one message at a time, each step told to `careful` (`CarefulLog`) before the next
        one, so the caller can commit that the end is going out as it goes, and the outcome before the next
        message starts (tasks/outbox/careful.py); `on_accepted` is then not called.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the mailer may be used again afterwards."""
        ...


class SmtpSettings(Protocol):
    """The slice of `core.settings.Settings` the SMTP mailer reads (kept structural: no import upward)."""

    @property
    def smtp_host(self) -> str: ...
    @property
    def smtp_port(self) -> int: ...
    @property
    def smtp_starttls(self) -> bool: ...
    @property
    def smtp_ssl(self) -> bool: ...
    @property
    def smtp_username(self) -> str | None: ...
    @property
    def smtp_password(self) -> str | None: ...
    @property
    def smtp_sender(self) -> str: ...
    @property
    def smtp_connections(self) -> int: ...
    @property
    def smtp_rate_per_second(self) -> float: ...


T = TypeVar("T")
# The caller's record of one message the server has just accepted (synchronous: nothing else runs before it).
OnAccepted = Callable[[int], object]


def _ignore(ref: int) -> None:
    return None


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed, else None (asyncio's own).

    The SMTP leg is mostly event-loop work — a few small writes and reads per message on each of the
    pooled connections — and on uvloop this process spent ~10 % less CPU a message than on asyncio's
    loop. Optional, so a platform without uvloop (Windows) still sends.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return None
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the loop `loop_factory` picks: for code that sends mail from synchronous code."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coro)


def classify_code(code: int) -> Delivery:
    """SMTP reply classes: 5xx is final (RFC 5321 §4.2.1); 4xx and garbled replies are worth another try."""
    return Delivery.PERMANENT if 500 <= code < 600 else Delivery.TEMPORARY


class _RateLimiter:
    """Spaces message starts evenly across all connections, so a provider's messages/s cap holds."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.next_slot = 0.0

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval  # no await between read and write: no lock needed
        if slot > now:
            await asyncio.sleep(slot - now)


class _Slot:
    """One pooled connection, opened lazily and reopened after the server drops it."""

    def __init__(self, factory: SmtpMailer) -> None:
        self._factory = factory
        self.client: aiosmtplib.SMTP | None = None

    async def connected(self) -> tuple[aiosmtplib.SMTP, bool]:
        """The client and whether it was reused (a reused one may have been dropped while idle)."""
        if self.client is not None and self.client.is_connected:
            return self.client, True
        self.drop()
        client = self._factory.new_client()
        await client.connect()
        if client.is_ehlo_or_helo_needed:  # done already when STARTTLS or AUTH ran; the extensions matter (SIZE)
            try:
                await client.ehlo()
            except aiosmtplib.SMTPHeloError:
                await client.helo()
        self.client = client
        return client, False

    def drop(self) -> None:
        if self.client is not None:
            with contextlib.suppress(RuntimeError):  # its event loop is already gone
                self.client.close()
        self.client = None

    async def quit(self) -> None:
        client, self.client = self.client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


class SmtpMailer:
    """aiosmtplib over a pool of `smtp_connections` reused connections.

    LIMITS.md measured ~450 messages/s with a connection per message against ~2,700 with four
    pooled ones, so connections live across `send_many` calls until `aclose()`. Concurrency is
    bounded by the pool size: each connection carries one SMTP transaction at a time.
    """

    def __init__(self, settings: SmtpSettings, *, timeout: float = 30.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self.connections = max(1, settings.smtp_connections)
        self._limiter = _RateLimiter(settings.smtp_rate_per_second) if settings.smtp_rate_per_second > 0 else None
        self._slots: list[_Slot] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def sender(self) -> str:
        return self.settings.smtp_sender

    def new_client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password,
            use_tls=s.smtp_ssl,
            # Explicit, never "opportunistic": a server that offers STARTTLS with a certificate we
            # cannot verify must not turn every message into a failure unless TLS was asked for.
            start_tls=s.smtp_starttls and not s.smtp_ssl,
            timeout=self.timeout,
        )

    def _pool(self) -> list[_Slot]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Connections belong to the loop that opened them; a new `asyncio.run` starts afresh.
            for slot in self._slots:
                slot.client = None
            self._slots = [_Slot(self) for _ in range(self.connections)]
            self._loop = loop
        return self._slots

    async def send_many(self, messages: list[OutgoingMessage], *, on_accepted: OnAccepted | None = None,
                        careful: CarefulLog | None = None) -> list[SendOutcome]:
        if careful is not None:
            return await self._send_carefully(messages, careful)
        results: list[SendOutcome | None] = [None] * len(messages)
        queue: Iterator[int] = iter(range(len(messages)))
        last_connect_error: list[str] = []

        async def work(slot: _Slot) -> None:
            for i in queue:
                outcome, usable = await self._send_one(slot, messages[i])
                results[i] = outcome
                if on_accepted is not None and outcome.delivery is Delivery.SENT:
                    on_accepted(outcome.ref)
                if not usable:
                    # This connection cannot be opened (server down, or its connection limit reached):
                    # stop this worker and let the others carry on with what they can.
                    last_connect_error.append(outcome.detail or "")
                    return

        slots = self._pool()[: max(1, min(self.connections, len(messages)))]
        await asyncio.gather(*(work(slot) for slot in slots))
        reason = last_connect_error[-1] if last_connect_error else "not attempted"
        return [
            r if r is not None else SendOutcome(m.ref, Delivery.TEMPORARY, f"no SMTP connection: {reason}")
            for r, m in zip(results, messages, strict=True)
        ]

    async def _send_carefully(self, messages: list[OutgoingMessage], log: CarefulLog) -> list[SendOutcome]:
        """One message per SMTP transaction on one pooled connection, each step told to `log` with no await
        between it and what follows (`CarefulLog`): the caller records that a message's end is going out, and
        its outcome, before the next one starts. Far slower than `send_many` (no concurrency, records per
        message): it carries only the few notices a lost sender may have delivered already
        (tasks/outbox/careful.py).
        """
        slot = self._pool()[0]
        results: list[SendOutcome] = []
        for msg in messages:
            log.starting(msg.ref)
            end = _End(log, msg.ref)
            outcome, usable = await self._send_one(slot, msg, end)
            log.settled(outcome, end.began)  # no await between the reply and the record
            results.append(outcome)
            if not usable:  # the connection cannot be opened: the rest waits for a later run
                reason = outcome.detail or ""
                results += [SendOutcome(m.ref, Delivery.TEMPORARY, f"no SMTP connection: {reason}")
                            for m in messages[len(results):]]
                break
        return results

    async def _send_one(self, slot: _Slot, msg: OutgoingMessage, end: _End | None = None) -> tuple[SendOutcome, bool]:
        """The outcome, and whether the connection slot is still worth using; `end` as `_transaction`'s."""
        if not _ADDRESS.match(msg.recipient):
            return SendOutcome(msg.ref, Delivery.PERMANENT, f"malformed address {msg.recipient!r}"), True
        if self._limiter is not None:
            await self._limiter.wait()
        for _ in range(2):
            try:
                client, reused = await slot.connected()
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                slot.drop()
                # Connect, greeting, TLS and AUTH failures say nothing about this message: retry later.
                return SendOutcome(msg.ref, Delivery.TEMPORARY, f"connect: {_describe(exc)}"), False
            try:
                await _transaction(client, msg, end)
                return SendOutcome(msg.ref, Delivery.SENT), True
            except _Withdrawn:
                slot.drop()  # mid-DATA: closing the connection is how the content is abandoned
                return SendOutcome(msg.ref, Delivery.TEMPORARY, "withdrawn before its end"), True
            except _Unanswered as exc:
                slot.drop()  # never resent on another connection: it may have arrived
                return SendOutcome(msg.ref, Delivery.TEMPORARY, _describe(exc.__cause__ or exc),
                                   maybe_delivered=True), True
            except aiosmtplib.SMTPRecipientsRefused as exc:
                refused = exc.recipients[0] if exc.recipients else None
                code = refused.code if refused else 550
                text = f"recipient refused: {code} {refused.message if refused else exc}"
                if code == 421:
                    slot.drop()  # 421 means the server is closing this connection
                return SendOutcome(msg.ref, classify_code(code), text, code), True
            except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPAuthenticationError) as exc:
                # Our own configuration is at fault, not the notice; keep it for a retry after the fix.
                slot.drop()
                return SendOutcome(msg.ref, Delivery.TEMPORARY, _describe(exc), exc.code), True
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code == 421 or not 400 <= exc.code < 600:
                    slot.drop()  # closing, or a reply we cannot trust: don't reuse the connection
                return SendOutcome(msg.ref, classify_code(exc.code), _describe(exc), exc.code), True
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as exc:
                slot.drop()
                if reused:
                    continue  # an idle pooled connection the server closed: reconnect once and resend
                return SendOutcome(msg.ref, Delivery.TEMPORARY, _describe(exc)), True
            except (TimeoutError, aiosmtplib.SMTPTimeoutError) as exc:
                slot.drop()
                return SendOutcome(msg.ref, Delivery.TEMPORARY, _describe(exc)), True
            except (ValueError, aiosmtplib.SMTPNotSupported) as exc:
                # aiosmtplib refuses an address it cannot put on the wire (e.g. non-ASCII without SMTPUTF8).
                return SendOutcome(msg.ref, Delivery.PERMANENT, f"malformed address: {_describe(exc)}"), True
        return SendOutcome(msg.ref, Delivery.TEMPORARY, "connection dropped twice"), True

    async def aclose(self) -> None:
        if self._loop is not asyncio.get_running_loop():
            self._slots, self._loop = [], None
            return
        await asyncio.gather(*(slot.quit() for slot in self._slots))


async def _transaction(client: aiosmtplib.SMTP, msg: OutgoingMessage, end: _End | None = None) -> None:
    """MAIL, RCPT and DATA for one message, raising what `SMTP.sendmail` raises for one recipient.

    With `end` (a careful send): the content is written and flushed to the socket first; then `end.before()`,
    the end (the final dot, three bytes) and `end.after()` follow one another with nothing in between that
    could wait, so the caller's record that the end went out and the end itself leave this process within
    microseconds of each other; the end is held in this host's send queue until `end.after()` has returned
    (`_held`), so the server cannot have it, nor be woken by it, before the record has left. `end.before()` False withdraws the message (`_Withdrawn`: its end never went).

    Not `sendmail` itself, which for one already-checked recipient parses both addresses four times,
    runs three regular-expression passes over the whole message (line endings for SIZE, then line
    endings and dot-stuffing again for DATA) and arms a timer with an extra future for every reply.
    Measured with 16 connections to aiosmtpd in its own process, this process's CPU a message:
    ~350 µs with sendmail, ~210 µs here — the content prepared with two `bytes.replace`, one deadline
    for the whole transaction.

    The addresses were checked by `_ADDRESS`; a control character is still refused by
    `execute_command` and a non-ASCII mailbox by the ASCII encoding (SMTPUTF8 is never requested),
    both as ValueError, as before.

    Content with 8-bit parts (build_message writes them) is announced as BODY=8BITMIME (RFC 6152) to a
    server that offers it, and turned into its all-base64 form for one that does not.
    """
    sender, recipient = msg.sender.encode("ascii"), msg.recipient.encode("ascii")
    data, body = msg.data, b""
    if not data.isascii():
        if client.supports_extension("8bitmime"):
            body = b"BODY=8BITMIME"
        else:
            data = seven_bit(data)
    content = _crlf(data)
    mail = [b"FROM:<" + sender + b">"]
    if client.supports_extension("size"):  # RFC 1870: the octets of the content as sent
        mail.append(b"SIZE=%d" % len(content))
    if body:
        mail.append(body)
    # RFC 5321 §4.5.2: a line's leading dot is doubled; a lone dot ends the content.
    stuffed = content.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    handed = False
    try:
        async with asyncio.timeout(client.timeout):
            reply = await client.execute_command(b"MAIL", *mail, timeout=None)
            if reply.code != 250:
                raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, msg.sender)
            reply = await client.execute_command(b"RCPT", b"TO:<" + recipient + b">", timeout=None)
            if reply.code not in (250, 251):
                raise aiosmtplib.SMTPRecipientsRefused(
                    [aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, msg.recipient)])
            reply = await client.execute_command(b"DATA", timeout=None)
            if reply.code != 354:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
            protocol = client.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("Connection lost")
            if end is None:
                protocol.write(stuffed + b".\r\n")
            else:
                protocol.write(stuffed)
                await _flushed(protocol)
                if not end.before():
                    raise _Withdrawn
                with _held(protocol):  # the end reaches the server only once `end.after()` has returned
                    protocol.write(b".\r\n")
                    handed = True
                    end.after()
            handed = True
            reply = await protocol.read_response(timeout=None)
            if reply.code != 250:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
    except (OSError, aiosmtplib.SMTPServerDisconnected) as exc:  # OSError: TimeoutError, ConnectionError among them
        client.close()  # a reply may still be on its way: this session can no longer be trusted
        if handed:
            # Whatever broke after the end went out, the server may have the message: never resent on another
            # connection (`_send_one` reconnects and resends only what failed before its end).
            raise _Unanswered(str(exc)) from exc
        raise
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused) as exc:
        if handed and isinstance(exc, aiosmtplib.SMTPResponseException) and not 400 <= exc.code < 600:
            # A reply to the end that is neither an acceptance nor a refusal (garbled): it may have arrived.
            client.close()
            raise _Unanswered(_describe(exc)) from exc
        # Abandon the envelope so the connection can carry the next message (as sendmail does).
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPException):
            await client.rset()
        raise


class _End:
    """A careful message's end, told to its `CarefulLog`; `began`: the log let it go out."""

    def __init__(self, log: CarefulLog, ref: int) -> None:
        self.log, self.ref, self.began = log, ref, False

    def before(self) -> bool:
        self.began = self.log.ending(self.ref) or self.began
        return self.began

    def after(self) -> None:
        self.log.ended(self.ref)


@contextlib.contextmanager
def _held(protocol: Any) -> Iterator[None]:
    """Hold what is written inside in this host's TCP send queue (Linux TCP_CORK) until the block ends.

    A careful resend writes its end here, then its caller commits that the end went out (`CarefulLog.ended`), and
    only then does the end leave for the server. Written to a socket without it, the end woke the receiving
    server, and on a loaded machine the scheduler could run the server, and others, while this process waited
    milliseconds to send the mark's COMMIT — a kill then left a copy delivered and unmarked, sent a third time
    (issue #18, session 12). Corked, the write wakes nobody; what was written still leaves if this process dies
    (the kernel sends queued data when it closes the socket), so the end is out once written, as before, and
    only this process's own next few microseconds separate it from the mark. The cork lets the data go after
    200 ms at most. A platform without TCP_CORK, or a socket that refuses it, sends as before.
    """
    transport = protocol.transport
    sock: Any = transport.get_extra_info("socket") if transport is not None else None
    corked = False
    if _CORK is not None and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, _CORK, 1)
            corked = True
    try:
        yield
    finally:
        if corked:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, _CORK, 0)


_CORK: int | None = getattr(socket, "TCP_CORK", None)


async def _flushed(protocol: Any) -> None:
    """Until the socket has taken every byte written so far (at once, unless the content outgrew its buffer)."""
    while (transport := protocol.transport) is not None and transport.get_write_buffer_size() > 0:
        await asyncio.sleep(0.001)


def _crlf(data: bytes) -> bytes:
    """The message with every line ending a CRLF, ending in one (what DATA transmits, before dot-stuffing)."""
    if b"\r" in data:  # not what build_message writes; let aiosmtplib sort out mixed or lone CRs
        return normalize_message_line_endings(data)
    data = data.replace(b"\n", b"\r\n")
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


class MaildirMailer:
    """Writes every message into a maildir (readable by mutt, Thunderbird, or the demo); always "sent".

    The offline stand-in for SMTP: the same bytes a server would get, with no network.
    """

    def __init__(self, path: Path | str, sender: str = "sanjin@ybj.example.gov.cn") -> None:
        self.path = Path(path)
        self._sender = sender
        self._box: mailbox.Maildir | None = None

    @property
    def sender(self) -> str:
        return self._sender

    def _write(self, messages: list[OutgoingMessage]) -> list[SendOutcome]:
        if self._box is None:
            # Made by hand: mailbox.Maildir(create=True) skips tmp/new/cur when the folder already exists.
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            self._box = mailbox.Maildir(self.path, create=False)
        for msg in messages:
            self._box.add(msg.data)
        return [SendOutcome(m.ref, Delivery.SENT) for m in messages]

    async def send_many(self, messages: list[OutgoingMessage], *, on_accepted: OnAccepted | None = None,
                        careful: CarefulLog | None = None) -> list[SendOutcome]:
        # File writes off the event loop, so a demo's other coroutines keep running.
        if careful is None:
            outcomes = await asyncio.to_thread(self._write, messages)
            report = on_accepted or _ignore
            for o in outcomes:
                report(o.ref)
            return outcomes
        results = []
        for msg in messages:  # one at a time, each step reported as it happens: `sent` never precedes its file
            careful.starting(msg.ref)
            if careful.ending(msg.ref):
                [outcome] = await asyncio.to_thread(self._write, [msg])
                careful.ended(msg.ref)
                careful.settled(outcome, True)
            else:
                outcome = SendOutcome(msg.ref, Delivery.TEMPORARY, "withdrawn before its end")
                careful.settled(outcome, False)
            results.append(outcome)
        return results

    async def aclose(self) -> None:
        return None


__all__ = [
    "CarefulLog",
    "Delivery",
    "MaildirMailer",
    "Mailer",
    "OnAccepted",
    "OutgoingMessage",
    "SendOutcome",
    "SmtpMailer",
    "SmtpSettings",
    "classify_code",
    "loop_factory",
    "run",
]

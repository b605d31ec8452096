"""Crash test of the sender (issue #18): kill -9 a process sending the outbox to a real SMTP server at random
moments, restart it each time, then count what the server received under each Message-ID.

    .venv/bin/python -m benchmarks.crash_notices [--notices 10000] [--kills 20] [--url URL] [--seed N]

The server is aiosmtpd in a process of its own (benchmarks.smtp_sink), alive across every restart of the
sender, so it counts every copy a crash makes arrive again. The sender runs as the product runs it
(`send_pending` on the installation's clock, 16 pooled connections, chunks of 500). Before each restart
the simulated clock moves past the lease (as the next scheduled run would find it), so the restarted
sender reclaims what the killed one held. The parent kills each sender at a random moment once it has
started sending; `--kill-at-handoff K` instead kills every sender as it hands its K-th chunk to SMTP, and
`--kill-plan accepted:1,careful:1,…` kills the k-th sender at the k-th point named (`_KillAt`): the
deterministic crash points the tests use. The end: every notice sent, each delivered at least once and at
most twice, always under its stored Message-ID.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.crash_proc import Child

ROOT = Path(__file__).resolve().parent.parent
SLUG = "shenyang-2025"
SENDER = "沈阳市医疗保障局 <sanjin@ybj.shenyang.example.gov.cn>"
START = datetime(2025, 10, 9, 9, 0)
READY = "sending"


def prepare(url: str, notices: int) -> None:
    """The program and `notices` application receipts in the outbox, every one due, each with its address."""
    from sqlmodel import Session

    from core.clock_store import DatabaseClock
    from core.db import make_engine
    from models.clock import SHANGHAI
    from models.tables import metadata
    from tasks.outbox.enqueue import NoticeDraft, enqueue_notices
    from tasks.programs import load_program
    from tests.factories import clock_at

    engine = make_engine(url)
    metadata.create_all(engine)
    program = load_program(engine, ROOT / "deploy" / "programs" / f"{SLUG}.yaml", clock=clock_at(2025, 8, 1, 9))
    clock = DatabaseClock(engine)
    clock.set(START.replace(tzinfo=SHANGHAI))
    drafts = [NoticeDraft(key=f"application_receipt:crash:{n}", kind="application_receipt",
                          recipient_type="institution", recipient_name=f"沈阳市第{n}社区卫生服务中心",
                          email=f"inst{n}@example.cn", recipient_id=n, program_id=program.program_id,
                          context={"institution_name": f"沈阳市第{n}社区卫生服务中心", "application_id": n,
                                   "submitted_on": "2025-09-12", "district": "和平区"})
              for n in range(1, notices + 1)]
    with Session(engine) as session, session.begin():
        for start in range(0, len(drafts), 5000):
            enqueue_notices(session, drafts[start : start + 5000], clock.now())
    engine.dispose()


class _KillAt:
    """The mailer, except that the process dies (SIGKILL, no clean-up) at a chosen point of the send.

    `spec` names the point: `handoff:K` as the K-th chunk is handed to the mailer; `accepted:K` as the server's
    acceptance of the K-th pipelined message comes back, before anything records it (so that copy arrived and
    is unrecorded); `careful:K` the same for the K-th message of a careful resend (tasks/outbox/careful.py);
    `end:K` right after the K-th careful end went out (and its mark was committed), before the server's reply;
    `preempt:K` at the K-th careful end, after it is written and before its mark is committed, stalls (as a loaded
    scheduler may, running the server first) and dies if the server answers the end meanwhile — else it goes on
    and dies right after the mark, as `end:K` (session 12: the end is held until the mark has left, so the server
    cannot answer it during the stall; before, it did, and the notice arrived a third time).
    """

    POINTS = ("handoff", "accepted", "careful", "end", "preempt")
    # Well under the 200 ms for which TCP_CORK holds data back: a loaded CI machine may deschedule the stalled
    # sender for tens of milliseconds past the deadline, and the kernel must not yet have let the end go then;
    # the server answers an end on loopback in about a millisecond, so 50 ms still catches the old order.
    STALL = 0.05

    def __init__(self, inner: Any, spec: str) -> None:
        point, _, at = spec.partition(":")
        if point not in self.POINTS or not at.isdigit():
            raise ValueError(f"kill point {spec!r}: expected one of {', '.join(p + ':K' for p in self.POINTS)}")
        self.inner, self.point, self.at = inner, point, int(at)
        self.seen = dict.fromkeys(self.POINTS, 0)

    def reached(self, point: str) -> None:
        """Count a passage at `point`; die if it is the chosen one."""
        self.seen[point] += 1
        if point == self.point and self.seen[point] == self.at:
            os.kill(os.getpid(), signal.SIGKILL)

    @property
    def sender(self) -> str:
        return str(self.inner.sender)

    async def send_many(self, messages: list[Any], **kwargs: Any) -> list[Any]:
        self.reached("handoff")
        if kwargs.get("careful") is not None:
            kwargs["careful"] = _KillingLog(kwargs["careful"], self)
        elif kwargs.get("on_accepted") is not None:
            record = kwargs["on_accepted"]

            def accepted(ref: int) -> object:
                self.reached("accepted")
                return record(ref)

            kwargs["on_accepted"] = accepted
        return list(await self.inner.send_many(messages, **kwargs))

    async def aclose(self) -> None:
        await self.inner.aclose()


class _KillingLog:
    """A careful send's log (notifications.smtp.CarefulLog) passing each step on, with `_KillAt`'s careful points."""

    def __init__(self, inner: Any, killer: _KillAt) -> None:
        self.inner, self.killer = inner, killer

    def starting(self, ref: int) -> object:
        return self.inner.starting(ref)

    def ending(self, ref: int) -> bool:
        return bool(self.inner.ending(ref))

    def ended(self, ref: int) -> object:
        if self.killer.point == "preempt" and self.killer.seen["preempt"] + 1 == self.killer.at:
            self._stall()
        self.killer.reached("preempt")
        done = self.inner.ended(ref)
        self.killer.reached("end")
        return done

    def _stall(self) -> None:
        """Up to `_KillAt.STALL` seconds; die as soon as the server's reply to the end is readable."""
        slots = getattr(self.killer.inner, "_slots", [])
        client = slots[0].client if slots else None
        sock = client.transport.get_extra_info("socket") if client is not None and client.transport else None
        deadline = time.monotonic() + _KillAt.STALL
        while sock is not None and (left := deadline - time.monotonic()) > 0:
            if select.select([sock], [], [], min(left, 0.005))[0]:
                os.kill(os.getpid(), signal.SIGKILL)  # the server has the end; its mark is not committed
        self.killer.point = "end"  # not answered: die right after the mark instead

    def settled(self, outcome: Any, ending: bool) -> object:
        if outcome.delivery.value == "sent":
            self.killer.reached("careful")
        return self.inner.settled(outcome, ending)


def child(url: str, port: int, kill_at: str | None, batch_size: int, connections: int = 16) -> None:
    from core.clock_store import DatabaseClock
    from core.db import make_engine
    from core.settings import Settings
    from notifications.smtp import SmtpMailer
    from tasks.outbox.send_notices import send_pending

    engine = make_engine(url)
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_sender=SENDER, smtp_connections=connections,
                        smtp_rate_per_second=0.0, smtp_starttls=False, smtp_ssl=False)
    mailer: Any = SmtpMailer(settings)
    if kill_at:
        mailer = _KillAt(mailer, kill_at)
    print(READY, flush=True)
    send_pending(engine, mailer, clock=DatabaseClock(engine), batch_size=batch_size)


def _advance_past_lease(url: str) -> None:
    """As the next scheduled run finds it: the killed sender's leases have run out."""
    from core.clock_store import DatabaseClock
    from core.db import make_engine
    from tasks.outbox.leases import LEASE

    engine = make_engine(url)
    clock = DatabaseClock(engine)
    clock.set(clock.now() + LEASE + timedelta(minutes=1))
    engine.dispose()


_SUSPECT_COLUMNS = ("id", "status", "attempts", "maybe_delivered", "second_copy_out", "next_attempt_at", "sent_at",
                    "last_error")


def suspects(url: str, received: list[tuple[str, str]], arrivals: list[tuple[float, int]],
             senders: list[tuple[int, float, float, str]], at_most: int = 5) -> list[dict[str, Any]]:
    """For a failed run: each notice that arrived more than twice or never, its outbox row and its receipts (when,
    on which client port, during which sender: `senders` holds (k, started, ended, kill point) in wall-clock time)."""
    from sqlalchemy import select

    from core.db import make_engine
    from models.outbox import Notice

    per_id = Counter(mid for mid, _ in received)
    engine = make_engine(url)
    cols = [getattr(Notice, c) for c in _SUSPECT_COLUMNS]
    with engine.connect() as conn:
        rows = conn.execute(select(Notice.message_id, *cols)).all()  # type: ignore[call-overload]
    engine.dispose()
    out = []
    for row in rows:
        mid = str(row[0])
        if 1 <= per_id[mid] <= 2:
            continue
        when = [arrivals[i] for i, (m, _) in enumerate(received) if m == mid and i < len(arrivals)]
        out.append({"message_id": mid, "copies": per_id[mid],
                    "row": {c: (str(v) if v is not None and not isinstance(v, int | bool) else v)
                            for c, v in zip(_SUSPECT_COLUMNS, row[1:], strict=True)},
                    "receipts": [{"at": round(t, 4), "port": port,
                                  "sender": next((f"{k} ({point})" for k, s, e, point in senders if s <= t <= e),
                                                 "between senders")} for t, port in when]})
        if len(out) >= at_most:
            break
    return out


def check(url: str, notices: int, received: list[tuple[str, str]]) -> dict[str, Any]:
    """Every notice sent once in the outbox; on the wire, each at least once and at most twice, same Message-ID."""
    from sqlalchemy import func, select
    from sqlmodel import Session, col

    from core.db import make_engine
    from models.outbox import Notice

    engine = make_engine(url)
    with Session(engine) as session:
        statuses = {str(k.value if hasattr(k, "value") else k): int(v) for k, v in
                    session.execute(select(Notice.status, func.count()).group_by(Notice.status)).all()}
        keys = int(session.execute(select(func.count(func.distinct(Notice.idempotency_key)))).scalar_one())
        stored = {str(mid): str(email) for mid, email in session.execute(select(Notice.message_id, Notice.email))}
        # Settled sent without the server's acceptance: a careful resend went out and was never answered.
        unconfirmed = int(session.execute(select(func.count()).select_from(Notice).where(
            col(Notice.second_copy_out), col(Notice.last_error).is_not(None))).scalar_one())
    engine.dispose()
    per_id = Counter(mid for mid, _ in received)
    copies = Counter(per_id[mid] for mid in stored)  # copies received → how many notices
    wrong_address = sum(1 for mid, rcpt in received if mid in stored and rcpt != stored[mid])
    found: dict[str, Any] = {
        "notices": sum(statuses.values()),
        "idempotency_keys": keys,
        "statuses": statuses,
        "received": len(received),
        "message_ids_received": len(per_id),
        "deliveries_per_message_id": {str(k): v for k, v in sorted(copies.items())},
        "min_deliveries": min((per_id[mid] for mid in stored), default=0),
        "max_deliveries": max((per_id[mid] for mid in stored), default=0),
        "unconfirmed": unconfirmed,
        "unknown_message_ids": sum(1 for mid in per_id if mid not in stored),
        "wrong_address": wrong_address,
    }
    problems = []
    if found["notices"] != notices or keys != notices:
        problems.append(f"notices {found['notices']} / keys {keys} != {notices}")
    if statuses != {"sent": notices}:
        problems.append(f"statuses {statuses}, expected all {notices} sent")
    if found["min_deliveries"] < 1:
        problems.append(f"{copies.get(0, 0)} notices never arrived")
    if found["max_deliveries"] > 2:
        problems.append(f"{sum(v for k, v in copies.items() if k > 2)} notices arrived more than twice")
    if found["unknown_message_ids"] or wrong_address:
        problems.append(f"{found['unknown_message_ids']} unknown Message-IDs, {wrong_address} to a wrong address")
    found["problems"] = problems
    return found


def child_main(args: list[str]) -> None:
    url, port, batch, at, connections = args
    child(url, int(port), None if at == "-" else at, int(batch), int(connections))


def _sent(url: str) -> int:
    from sqlalchemy import func, select

    from core.db import make_engine
    from models.outbox import Notice
    from models.states import NoticeStatus

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Notice)
                                    .where(Notice.status == NoticeStatus.SENT)).scalar_one())
    finally:
        engine.dispose()


def _kill_at_random_point(sender: Child, url: str, target: int, jitter: float, rng: random.Random) -> bool:
    """Once `target` notices are recorded sent, wait a random moment more (so the kill falls anywhere in the
    pipeline: a chunk on the wire, one being recorded, one being claimed) and kill; whether it was running."""
    if sender.wait_for(READY, 600) is None:
        return False
    while sender.poll() is None and _sent(url) < target:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, jitter))
    return sender.kill()


def run(notices: int, kills: int, url: str | None = None, seed: int = 18, max_delay: float = 0.3,
        kill_at_handoff: int | None = None, batch_size: int = 500, fork: bool = False,
        kill_plan: list[str] | None = None, connections: int = 16) -> dict[str, Any]:
    """Prepare, send under `kills` crashes, finish with one run left alone, and count; `url` defaults to SQLite.

    Kill k of K falls once a random number of notices between k/(K+1) and (k+1)/(K+1) of them are recorded
    sent, plus a random delay of up to `max_delay` seconds: random points spread over the whole send (a kill
    after a random time alone mostly fell on a restarted sender with nothing left to do). `kill_at_handoff`
    instead kills every sender as it hands over its K-th chunk; `kill_plan` kills sender k at the point
    `kill_plan[k]` names (see `_KillAt`; `kills` is then its length): deterministic crash points.
    """
    from benchmarks.mail import Sink

    os.environ["SANJIN_CLOCK"] = "database"  # a rehearsal database: time is simulated (core/clock_store.py)
    rng = random.Random(seed)
    if kill_plan is None and kill_at_handoff:
        kill_plan = [f"handoff:{kill_at_handoff}"] * kills
    if kill_plan is not None:
        kills = len(kill_plan)
    with tempfile.TemporaryDirectory(prefix="sanjin-crash-notices-") as tmp:
        home = Path(tmp)
        url = url or f"sqlite:///{home / 'sanjin.db'}"
        prepare(url, notices)
        sink = Sink(home, "crash")
        killed_running, failures = 0, []
        senders: list[tuple[int, float, float, str]] = []  # (k, started, ended, kill point), for `suspects`
        try:
            started = time.perf_counter()
            for k in range(kills):
                point = kill_plan[k] if kill_plan is not None else "-"
                began = time.time()
                sender = Child("benchmarks.crash_notices",
                               [url, str(sink.port), str(batch_size), point, str(connections)], fork=fork)
                if kill_plan is not None:
                    sender.wait(600)
                    killed = sender.poll() == -signal.SIGKILL
                else:
                    target = int(rng.uniform(k, k + 1) * notices / (kills + 1))
                    killed = _kill_at_random_point(sender, url, target, max_delay, rng)
                killed_running += killed
                status = sender.wait(600)
                if status not in (0, -signal.SIGKILL):  # a sender that failed by itself is a finding
                    failures.append(f"sender exited {status}: {sender.stderr_tail(600)}")
                senders.append((k, began, time.time(), point if kill_plan is not None else "random"))
                _advance_past_lease(url)
            began = time.time()
            final = Child("benchmarks.crash_notices", [url, str(sink.port), str(batch_size), "-", str(connections)],
                          fork=fork)
            if final.wait(1800) != 0:
                raise RuntimeError(f"the run after the crashes failed: {final.stderr_tail()}")
            senders.append((kills, began, time.time(), "final"))
            seconds = time.perf_counter() - started
        finally:
            stats = sink.stop()
        received = [(str(mid), str(rcpt)) for mid, rcpt in stats["messages"]]
        found = check(url, notices, received)
        if found["min_deliveries"] < 1 or found["max_deliveries"] > 2:
            found["suspects"] = suspects(url, received, [(float(t), int(p)) for t, p in stats.get("arrivals", [])],
                                         senders)
        found["problems"] += failures
        found.update(kills=kills, killed_while_running=killed_running, seconds=round(seconds, 1))
        return found


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child_main(sys.argv[2:7])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--url", default=None)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--max-delay", type=float, default=0.3, help="seconds after the kill's point, at most")
    parser.add_argument("--kill-at-handoff", type=int, default=None, help="kill each sender at its K-th chunk")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--kill-plan", default=None,
                        help="comma-separated kill points, one per sender: handoff:K, accepted:K, careful:K, end:K, "
                             "preempt:K")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    plan = args.kill_plan.split(",") if args.kill_plan else None
    found = run(args.notices, args.kills, args.url, args.seed, args.max_delay, args.kill_at_handoff, args.batch_size,
                kill_plan=plan, connections=args.connections)
    print(json.dumps(found, ensure_ascii=False, indent=2))
    sys.exit(1 if found["problems"] else 0)


if __name__ == "__main__":
    main()

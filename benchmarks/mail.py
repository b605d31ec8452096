# mypy: disable-error-code="arg-type,call-overload,union-attr,attr-defined,misc"
# (SQLModel types column attributes as plain values, so query expressions confuse mypy; as in sanjin/demo.py.)
"""Figure 2: N reminders, from "due" to delivered to a local aiosmtpd, beside a baseline of the same run.

    .venv/bin/python -m benchmarks.mail --reminders 100000 [--db sqlite] [--connections 32] [--sample 1000]
        [--sink-loop uvloop|asyncio]

(`python -m benchmarks --only reminders` runs the same in a child process, beside the other figures.)

Set-up (untimed): the Shenyang program on 2025-11-24 08:00 and N running institutions whose platform
account is still pending, due 2025-11-30 — within the program's 5-working-day reminder horizon, so
each is owed one 招采子系统账号注册提醒.

Timed, as the product runs it (the reminders deployment, then the sender):
1. `tasks.outbox.reminders.send_reminders` — who is due, and N `account_reminder` rows into the outbox;
2. `tasks.outbox.send_notices.send_pending` — claim, render (Jinja: subject, text, HTML), build the
   multipart message, deliver over the mailer's pool of SMTP connections, mark sent.
The SMTP server (`benchmarks.smtp_sink`: aiosmtpd on uvloop, `--sink-loop asyncio` for asyncio's own
loop; the JSON's `receiver` says which) runs in its own process and records every Message-ID and
recipient it accepts; the run checks that each sent notice arrived exactly once, at its
address, under its stored Message-ID, and parses sample messages (Chinese subject, To, multipart).

Baseline, same run, same database, an identical server process: the same send path on `--sample` further reminders,
with a mailer that opens one SMTP connection per message (aiosmtplib.send), one message at a time —
the obvious way to write a sender. Messages/s is compared (both are linear in N).

Reference, same run: the SMTP leg alone — up to 10,000 pre-built messages over the same pool to a fresh
sink (LIMITS.md's floor, measured here under the same load), so the figure says how close the product
comes to what this machine's aiosmtpd can take at that moment. CPU seconds of the sender and of the
SMTP server are reported beside the wall times: on a shared 2-core machine they vary far less.

Peak RSS: the process's high-water mark is restarted once the set-up is written, so figure 7 shows the
product's peak (and the baselines'), not the data generator's; the set-up's peak is reported beside it.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.env import SLUG, fresh_database, setup_program, shanghai
from benchmarks.instrument import peak_rss_mb
from benchmarks.profiling import profiled

TARGET_MESSAGES_PER_SECOND = 2000
# The sender's pool of SMTP connections (a deployment setting, SANJIN_SMTP_CONNECTIONS; the product's
# default is 4). 30,000 reminders on PostgreSQL, session 4, same code: 8 → 2,806 msg/s sending,
# 16 → 2,950-2,995, 32 → 3,144-3,166, 48 → 3,137, 64 → 3,161; on SQLite 16 → 3,084-3,167, 32 →
# 3,305-3,429. With more connections each turn of either event loop finds more replies or commands
# ready, and both processes spent less CPU a message (sender ~3 %, receiver ~4 %).
SMTP_CONNECTIONS = 32
DUE_ON = "2025-11-30"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sink:
    """benchmarks.smtp_sink in a subprocess; `stop()` returns what it received and its own CPU and RSS."""

    def __init__(self, home: Path, name: str, loop: str = "uvloop") -> None:
        self.port = _free_port()
        self.stats_path = home / f"sink-{name}.json"
        self.stats_path.unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.smtp_sink", str(self.port),
                                      str(self.stats_path), "--loop", loop],
                                     cwd=str(Path(__file__).resolve().parent.parent))
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.proc.kill()
                    raise RuntimeError("the SMTP sink did not start") from None
                time.sleep(0.1)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float | None:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return None

    def stop(self) -> dict[str, Any]:
        rss = self.peak_rss_mb()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        stats: dict[str, Any] = json.loads(self.stats_path.read_text(encoding="utf-8"))
        stats["peak_rss_mb"] = rss
        return stats


@contextmanager
def _timed(out: dict[str, Any], sink: Sink | None = None) -> Iterator[None]:
    """Wall and CPU seconds of the block: this process's, and the SMTP server's when given."""
    wall, cpu = time.perf_counter(), time.process_time()
    server = sink.cpu_seconds() if sink else 0.0
    try:
        yield
    finally:
        out["seconds"] = round(time.perf_counter() - wall, 3)
        out["cpu_seconds"] = round(time.process_time() - cpu, 3)
        if sink:
            out["server_cpu_seconds"] = round(sink.cpu_seconds() - server, 3)


def _seed(engine: Any, count: int) -> None:
    """N running institutions with e-mail, each with a pending platform account due on DUE_ON."""
    from datetime import date

    from sqlalchemy import insert, select, text

    from benchmarks.data import make_institutions
    from models.enrollment import Application, Batch, Institution
    from models.operations import PlatformAccount
    from models.program import Program
    from models.states import KIND_LABELS, AccountState, ApplicationState, BatchState

    kinds = {label: kind for kind, label in KIND_LABELS.items()}
    when = shanghai(9, 30)
    rows = make_institutions(count, seed=2)
    with engine.begin() as conn:
        pid = conn.execute(select(Program.id).where(Program.slug == SLUG)).scalar_one()
        batch = conn.execute(insert(Batch).returning(Batch.id), [
            {"program_id": pid, "number": 1, "state": BatchState.RUNNING, "opened_on": when.date(),
             "cutoff_on": when.date(), "declared_at": when, "matured_at": when, "running_at": when}]).scalar_one()
        conn.execute(insert(Institution), [{
            "name": r.row["单位名称"], "address": r.row["单位地址"], "uscc": r.row["统一社会信用代码"],
            "legal_rep": r.row["法人代表"], "insurance_code": r.code, "contact_name": r.row["联系人"],
            "phone": r.row["联系电话"], "email": r.row["电子邮箱"] or f"{r.code.lower()}@cun.example.cn",
            "district": r.district, "kind": kinds[r.row["机构类别"]], "private_tertiary": False,
            "special_designated": False,
        } for r in rows])
        ids = [(int(i), d) for i, d in conn.execute(select(Institution.id, Institution.district))]
        conn.execute(insert(Application), [
            {"program_id": pid, "institution_id": i, "attempt": 1, "district": d, "state": ApplicationState.RUNNING,
             "batch_id": batch, "committed_drug_count": 60, "findings": [], "submitted_at": when, "decided_at": when}
            for i, d in ids])
        conn.execute(insert(PlatformAccount), [
            {"program_id": pid, "institution_id": i, "state": AccountState.PENDING, "due_on": date.fromisoformat(DUE_ON)}
            for i, _ in ids])
    if engine.dialect.name == "postgresql":
        # As autovacuum would have by the next morning's run. Without statistics on tables just bulk-filled,
        # PostgreSQL plans the laggards query (tasks.platform.laggards) as a nested loop: 41 s for 20,000
        # institutions instead of 0.4 s, ~17 min at 100,000.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("institution", "application", "batch", "platformaccount", "notice"):
                conn.execute(text(f"ANALYZE {table}"))


def _reset_peak_rss() -> None:
    """Restart this process's VmHWM at its current RSS (Linux ≥ 4.0); elsewhere the peak keeps the set-up's."""
    import contextlib
    import gc

    gc.collect()
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


class OneConnectionPerMessage:
    """The baseline's mailer: a new SMTP connection for every message, one message after another."""

    def __init__(self, host: str, port: int, sender: str) -> None:
        self.host, self.port, self._sender = host, port, sender

    @property
    def sender(self) -> str:
        return self._sender

    async def send_many(self, messages: list[Any], **_: Any) -> list[Any]:
        import aiosmtplib

        from notifications.smtp import Delivery, SendOutcome

        out = []
        for m in messages:
            try:
                await aiosmtplib.send(m.data, sender=m.sender, recipients=[m.recipient], hostname=self.host,
                                      port=self.port)
                out.append(SendOutcome(m.ref, Delivery.SENT))
            except (aiosmtplib.SMTPException, OSError) as exc:
                out.append(SendOutcome(m.ref, Delivery.TEMPORARY, str(exc)))
        return out

    async def aclose(self) -> None:
        return None


def _enqueue_baseline(engine: Any, clock: Any, count: int) -> None:
    """`count` more account reminders, copies of sent ones under new keys, for the baseline to send."""
    from sqlalchemy import select

    from core.db import transaction
    from models.outbox import Notice
    from tasks.outbox.enqueue import NoticeDraft, enqueue_notices

    with transaction(engine) as session:
        rows = session.execute(select(Notice).order_by(Notice.id).limit(count)).scalars().all()
        drafts = [NoticeDraft(f"baseline:{n.idempotency_key}", n.kind, n.recipient_type, n.recipient_name, n.email,
                              dict(n.context), n.recipient_id, n.program_id) for n in rows]
        enqueue_notices(session, drafts, clock.now())


def _sent_notices(engine: Any, prefix: str | None) -> dict[str, tuple[str, str, str]]:
    """Message-ID → (e-mail, subject, institution name) of the sent notices (the baseline's or the product's)."""
    from sqlalchemy import select

    from models.outbox import Notice
    from models.states import NoticeStatus

    key = Notice.idempotency_key
    query = select(Notice.message_id, Notice.email, Notice.subject, Notice.recipient_name).where(
        Notice.status == NoticeStatus.SENT)
    query = query.where(key.like(f"{prefix}%") if prefix else ~key.like("baseline:%"))
    with engine.connect() as conn:
        return {mid: (addr, subject, name) for mid, addr, subject, name in conn.execute(query)}


def _delivery_checks(stats: dict[str, Any], sent: dict[str, tuple[str, str, str]], sender: str) -> dict[str, Any]:
    """Each sent notice arrived once, at its address, under its Message-ID; sample messages parse right."""
    received = stats["messages"]
    ids = [mid for mid, _ in received]
    wrong_rcpt = sum(1 for mid, rcpt in received if mid in sent and sent[mid][0] != rcpt)
    headers_ok = 0
    for raw in stats["samples"]:
        import base64

        msg = email.message_from_bytes(base64.b64decode(raw), policy=email.policy.default)
        mid = str(msg["Message-ID"])
        addr, subject, name = sent.get(mid, ("", "", ""))
        parts = [p.get_content_type() for p in msg.iter_parts()]
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        ok = (msg.get_content_type() == "multipart/alternative" and parts == ["text/plain", "text/html"]
              and str(msg["Subject"]) == subject and "账号注册" in subject
              and msg["To"].addresses[0].addr_spec == addr and msg["To"].addresses[0].display_name == name
              and msg["From"].addresses[0].addr_spec == sender and msg["Auto-Submitted"] == "auto-generated"
              and text is not None and name in text.get_content() and "2025年11月30日" in text.get_content()
              and html is not None and name in html.get_content())
        headers_ok += ok
    return {
        "received": stats["received"], "unique_message_ids": len(set(ids)), "duplicates": len(ids) - len(set(ids)),
        "missing": len(set(sent) - set(ids)), "unexpected": len(set(ids) - set(sent)), "wrong_recipient": wrong_rcpt,
        "samples_parsed": len(stats["samples"]), "samples_with_right_headers": headers_ok,
        "server_connections": stats["connections"],
        "ok": (stats["received"] == len(sent) == len(set(ids)) and set(ids) == set(sent) and wrong_rcpt == 0
               and headers_ok == len(stats["samples"]) > 0),
    }


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Figure 2 at cfg["reminders"] reminders on cfg["db"]; the runner's child and `main` call this."""
    from core.settings import Settings
    from notifications.smtp import SmtpMailer, loop_factory
    from tasks.outbox.reminders import send_reminders
    from tasks.outbox.send_notices import send_pending

    home = Path(cfg["home"])
    sink_loop = str(cfg.get("sink_loop") or "uvloop")
    n = int(cfg["reminders"])
    sample = min(int(cfg["sample"]), n)
    connections = int(cfg.get("smtp_connections") or SMTP_CONNECTIONS)
    profile_dir = Path(cfg["profile_dir"]) if cfg.get("profile_dir") else None
    profiles: dict[str, Any] = {}
    out: dict[str, Any] = {"reminders_due": n, "db": cfg["db"], "smtp_connections": connections,
                           "receiver": f"aiosmtpd {_version('aiosmtpd')} on {sink_loop}, a process of its own",
                           "sender_loop": "uvloop" if loop_factory() else "asyncio"}
    with fresh_database(cfg["db"], home, name="reminders") as db:
        engine = db.engine
        clock = setup_program(engine, home, shanghai(11, 24, 8))
        start = time.perf_counter()
        _seed(engine, n)
        out["setup_seconds_untimed"] = round(time.perf_counter() - start, 2)
        out["peak_rss_mb_setup"] = round(peak_rss_mb(), 1)
        _reset_peak_rss()  # from here on the peak is the product's (generating 100,000 rows is not)
        settings = Settings(smtp_host="127.0.0.1", smtp_port=0, smtp_connections=connections,
                            smtp_sender="沈阳市医疗保障局 <sanjin@ybj.shenyang.example.gov.cn>")
        sink = Sink(home, "product", sink_loop)
        try:
            settings = settings.model_copy(update={"smtp_port": sink.port})
            stages: dict[str, dict[str, Any]] = {"reminders_to_outbox": {}, "outbox_to_delivered": {}}
            with _timed(stages["reminders_to_outbox"]), profiled(profile_dir, "2-send-reminders", profiles):
                reminders = send_reminders(engine, SLUG, clock=clock)
            with _timed(stages["outbox_to_delivered"], sink), profiled(profile_dir, "2-send-pending", profiles):
                report = send_pending(engine, SmtpMailer(settings), clock=clock)
        finally:
            stats = sink.stop()
        out["receiver_loop"] = stats.get("loop", "asyncio")
        out["peak_rss_mb_product"] = round(peak_rss_mb(), 1)
        out["server_peak_rss_mb"] = stats["peak_rss_mb"]
        seconds = sum(s["seconds"] for s in stages.values())
        out.update({
            "seconds": round(seconds, 3),
            "messages_per_second": round(report.sent / seconds, 1) if seconds else None,
            "send_messages_per_second": round(report.sent / stages["outbox_to_delivered"]["seconds"], 1),
            "target_messages_per_second": TARGET_MESSAGES_PER_SECOND,
            "stages": stages,
            "reminder_report": {"due": reminders.due, "enqueued": reminders.enqueued},
            "send_report": {"sent": report.sent, "retried": report.retried, "dead": report.dead,
                            "skipped": report.skipped},
        })
        delivered = _delivery_checks(stats, _sent_notices(engine, None), "sanjin@ybj.shenyang.example.gov.cn")

        # Exactly once: running both again finds nothing due and sends nothing.
        again = send_reminders(engine, SLUG, clock=clock)
        rerun = send_pending(engine, SmtpMailer(settings.model_copy(update={"smtp_port": _free_port()})), clock=clock)
        out["checks"] = {
            "account_reminders_due": reminders.due["account_reminder"],
            "enqueued": sum(reminders.enqueued.values()), "sent": report.sent,
            "delivery": delivered,
            "rerun_enqueued": sum(again.enqueued.values()), "rerun_attempted": rerun.attempted,
        }
        out["checks"]["ok"] = (reminders.due["account_reminder"] == sum(reminders.enqueued.values()) == n
                               == report.sent and report.dead == report.retried == 0 and delivered["ok"]
                               and out["checks"]["rerun_enqueued"] == out["checks"]["rerun_attempted"] == 0)

        out["baseline"] = _baseline(engine, clock, home, sample, settings.smtp_sender, sink_loop)
        out["checks"]["baseline_delivered_exactly_once"] = out["baseline"]["delivery_ok"]
        out["checks"]["ok"] = out["checks"]["ok"] and out["baseline"]["delivery_ok"]
        out["smtp_floor"] = _smtp_floor(home, min(n, FLOOR_MESSAGES), settings, sink_loop)
        out["profiles"] = profiles
    return out


FLOOR_MESSAGES = 10_000


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def _smtp_floor(home: Path, count: int, settings: Any, sink_loop: str) -> dict[str, Any]:
    """What the SMTP leg alone reaches here and now: pre-built messages over the same pool, no database,
    no rendering (LIMITS.md's floor, measured in the same run so the machine's load is the same)."""
    from notifications.render import build_message, message_id_for, render_notice
    from notifications.smtp import Delivery, OutgoingMessage, SmtpMailer, run

    context = {"program_name": "沈阳市集采药品“三进”工作（2025年）", "recipient_name": "沈阳市和平区长青第1大药房",
               "institution_name": "沈阳市和平区长青第1大药房", "due_on": DUE_ON, "due_provisional": False, "working_days_left": 5,
               "today": "2025-11-24"}
    rendered = render_notice("account_reminder", context, strict=True)
    messages = []
    for i in range(count):
        mid = message_id_for(i, f"floor:{i}", "ybj.shenyang.example.gov.cn")
        address = f"floor{i:06d}@yd.example.cn"
        data = build_message({"email": address, "recipient_name": context["recipient_name"]}, rendered,
                             settings.smtp_sender, mid)
        messages.append(OutgoingMessage(i, "sanjin@ybj.shenyang.example.gov.cn", address, data, mid))
    sink = Sink(home, "floor", sink_loop)
    timing: dict[str, Any] = {}
    try:
        mailer = SmtpMailer(settings.model_copy(update={"smtp_port": sink.port}))

        async def send() -> list[Any]:
            try:
                return await mailer.send_many(messages)
            finally:
                await mailer.aclose()

        with _timed(timing, sink):
            outcomes = run(send())  # on the loop the product's sender uses
    finally:
        stats = sink.stop()
    sent = sum(o.delivery is Delivery.SENT for o in outcomes)
    return {"what": "pre-built messages over the same pool of connections: no database, no rendering",
            "messages": count, "sent": sent, "received": stats["received"], **timing,
            "messages_per_second": round(sent / timing["seconds"], 1) if timing["seconds"] else None}


def _baseline(engine: Any, clock: Any, home: Path, sample: int, sender: str, sink_loop: str) -> dict[str, Any]:
    from tasks.outbox.send_notices import send_pending

    _enqueue_baseline(engine, clock, sample)
    sink = Sink(home, "baseline", sink_loop)
    timing: dict[str, Any] = {}
    try:
        with _timed(timing, sink):
            report = send_pending(engine, OneConnectionPerMessage("127.0.0.1", sink.port, sender), clock=clock)
    finally:
        stats = sink.stop()
    delivered = _delivery_checks(stats, _sent_notices(engine, "baseline:"), "sanjin@ybj.shenyang.example.gov.cn")
    return {
        "what": "the same send path (claim, render, build, mark) with one SMTP connection per message, "
                "sent one after another (aiosmtplib.send)",
        "sample": sample, "sent": report.sent, **timing,
        "messages_per_second": round(report.sent / timing["seconds"], 1) if timing["seconds"] else None,
        "delivery_ok": delivered["ok"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Standalone: one figure-2 run in this process (the runner runs it in a child with the other figures)."""
    parser = argparse.ArgumentParser(prog="benchmarks.mail", description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--connections", type=int, default=SMTP_CONNECTIONS, help="SMTP connections of the product's pool")
    parser.add_argument("--sample", type=int, default=1000, help="reminders the baseline sends")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--sink-loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the event loop the receiving aiosmtpd runs on")
    args = parser.parse_args(argv)
    import tempfile

    from benchmarks.env import prepare_process

    home = args.work_dir or Path(tempfile.mkdtemp(prefix="sanjin-bench-mail-"))
    prepare_process(home)
    result = run({"home": str(home), "db": args.db, "reminders": args.reminders, "sample": args.sample,
                  "smtp_connections": args.connections, "profile_dir": str(args.profile) if args.profile else None,
                  "sink_loop": args.sink_loop})
    base = result["baseline"]["messages_per_second"]
    # The baseline replaces the sending stage only, so that is what it is compared with.
    result["ratio"] = round(result["send_messages_per_second"] / base, 2) if base else None
    print(json.dumps(result, ensure_ascii=False, indent=1))
    return result


if __name__ == "__main__":
    main()

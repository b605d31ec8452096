"""Figure 2: reminders to N institutions rendered and delivered to a local aiosmtpd, beside a baseline.

    .venv/bin/python -m benchmarks.mail --messages 100000 [--connections 4] [--baseline-sample 2000]

The product path: N `account_reminder` notices enqueued in bulk (`enqueue_notices`), then
`send_pending` renders, builds and delivers them over a pool of reused connections. The baseline,
measured in the same run against the same server: one SMTP connection per message (`aiosmtplib.send`),
on a sample of the same rendered messages (it is ~linear, so messages/s is the comparable figure).
The SMTP server runs in its own process (a server in the sender's process fights it for the GIL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from models.clock import SystemClock


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                               "-c", "aiosmtpd.handlers.Sink"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("aiosmtpd did not start")


def run(messages: int, connections: int, baseline_sample: int) -> dict[str, Any]:
    from models.tables import metadata
    from notifications.render import build_message, message_id_for, render_notice
    from notifications.smtp import SmtpMailer
    from sanjin.config import Settings
    from sanjin.db import make_engine, transaction
    from tasks.outbox import NoticeDraft, enqueue_notices
    from tasks.send_notices import send_pending

    work = Path(tempfile.mkdtemp(prefix="sanjin-bench-mail-"))
    engine = make_engine(f"sqlite:///{work / 'mail.db'}")
    metadata.create_all(engine)
    clock = SystemClock()
    port = _free_port()
    server = _start_server(port)
    try:
        t0 = time.perf_counter()
        drafts = [NoticeDraft(key=f"reminder:account:bench:{i}", kind="account_reminder", recipient_type="institution",
                              recipient_id=i, recipient_name=f"沈阳市和平区第{i}大药房", email=f"p{i:06d}@example.cn",
                              context={"program_name": "沈阳市集采药品“三进”工作（2025年）",
                                       "institution_name": f"沈阳市和平区第{i}大药房", "due_on": "2025-11-30",
                                       "working_days_left": 5})
                  for i in range(messages)]
        with transaction(engine) as session:
            enqueue_notices(session, drafts, clock.now() - timedelta(seconds=1))
        enqueue_s = time.perf_counter() - t0

        settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_connections=connections)
        t0 = time.perf_counter()
        report = send_pending(engine, SmtpMailer(settings), clock=clock, batch_size=2000)
        send_s = time.perf_counter() - t0

        sample = drafts[:baseline_sample]
        built = []
        for i, draft in enumerate(sample):
            rendered = render_notice(draft.kind, {**draft.context, "recipient_name": draft.recipient_name,
                                                  "today": "2025-11-24"})
            built.append(build_message({"recipient_name": draft.recipient_name, "email": draft.email}, rendered,
                                       settings.smtp_sender, message_id_for(i, draft.key, "bench.example")))

        async def one_connection_each() -> None:
            import aiosmtplib

            for i, data in enumerate(built):
                await aiosmtplib.send(data, sender=settings.smtp_sender, recipients=[sample[i].email or ""],
                                      hostname="127.0.0.1", port=port)

        t0 = time.perf_counter()
        asyncio.run(one_connection_each())
        baseline_s = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(timeout=10)
    rate = report.sent / send_s if send_s else 0.0
    baseline_rate = len(built) / baseline_s if baseline_s else 0.0
    return {
        "figure": "reminders rendered and delivered to aiosmtpd",
        "messages": messages, "sent": report.sent, "dead": report.dead, "retried": report.retried,
        "connections": connections, "enqueue_seconds": round(enqueue_s, 2), "send_seconds": round(send_s, 2),
        "messages_per_second": round(rate, 1), "target_messages_per_second": 2000,
        "baseline": "one SMTP connection per message (aiosmtplib.send), pre-built messages",
        "baseline_sample": len(built), "baseline_messages_per_second": round(baseline_rate, 1),
        "ratio": round(rate / baseline_rate, 2) if baseline_rate else None,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="benchmarks.mail", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--baseline-sample", type=int, default=2000)
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    result = run(args.messages, args.connections, min(args.baseline_sample, args.messages))
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()

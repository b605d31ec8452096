"""The receiving end of figure 2: aiosmtpd in a process of its own, counting what it is given.

    python -m benchmarks.smtp_sink PORT STATS.json [--keep 20] [--loop uvloop|asyncio]

Accepts every message, notes its Message-ID and envelope recipient (a bytes search, so the sink
stays the cheap part), and on SIGTERM writes them to STATS.json with the first `--keep` raw messages,
so the benchmark can check that every notice arrived exactly once and that the headers are right.
It runs in its own process: a server sharing the sender's interpreter fights it for the GIL
(LIMITS.md: ~450 messages/s instead of thousands).

aiosmtpd runs on uvloop unless `--loop asyncio` is given. With the old 78-line base64 reminders it cost
~540 µs of CPU a message on asyncio's own loop, ~420-440 on uvloop; with the 38-line 8-bit ones ~360-400
on uvloop. The receiver is this machine's ceiling, and uvloop is what a deployment measuring itself
against this figure would run it on; the figure's JSON says which loop it had (`receiver`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class CountingHandler:
    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.received: list[tuple[str, str]] = []  # (Message-ID, RCPT TO), in arrival order
        self.arrivals: list[tuple[float, int]] = []  # (wall-clock time, the client's port) of each, the same order
        self.samples: list[str] = []
        self.peers: set[Any] = set()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        if isinstance(data, str):  # pragma: no cover - decode_data is off
            data = data.encode("utf-8")
        self.received.append((_message_id(data), ",".join(envelope.rcpt_tos)))
        self.arrivals.append((time.time(), int(session.peer[1]) if session.peer else 0))
        self.peers.add(session.peer)
        if len(self.samples) < self.keep:
            self.samples.append(base64.b64encode(data).decode("ascii"))
        return "250 Message accepted for delivery"


def _message_id(data: bytes) -> str:
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    start = head.find(b"\nMessage-ID:")
    if start < 0:
        return ""
    end = head.find(b"\n", start + 1)
    return head[start + 12 : end if end >= 0 else None].strip().decode("ascii", "replace")


LOOPS = ("uvloop", "asyncio")


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.smtp_sink")
    parser.add_argument("port", type=int)
    parser.add_argument("stats", type=Path)
    parser.add_argument("--keep", type=int, default=20)
    parser.add_argument("--loop", choices=LOOPS, default="uvloop", help="the event loop aiosmtpd runs on")
    args = parser.parse_args(argv)
    handler = CountingHandler(args.keep)
    loop = new_loop(args.loop)
    server = loop.run_until_complete(loop.create_server(lambda: SMTP(handler), "127.0.0.1", args.port))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    loop.run_forever()
    server.close()
    stats = {"received": len(handler.received), "messages": handler.received, "arrivals": handler.arrivals,
             "connections": len(handler.peers),
             "samples": handler.samples, "loop": args.loop}
    tmp = args.stats.with_suffix(".tmp")
    tmp.write_text(json.dumps(stats), encoding="utf-8")
    tmp.replace(args.stats)


if __name__ == "__main__":
    main()

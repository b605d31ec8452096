"""A real SMTP server on loopback (aiosmtpd); the `engine` fixture (SQLite and PostgreSQL) is tests/conftest.py's."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from core.settings import Settings
from models.clock import FixedClock


def free_port() -> int:
    """aiosmtpd's Controller(port=0) cannot report the port it got, so ask the OS for one first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: Any  # (host, port) of the client: one value per connection
    mail_options: list[str] = field(default_factory=list)  # MAIL FROM parameters (SIZE=…, BODY=…)


@dataclass
class RecordingHandler:
    """Stores every accepted envelope; `replies` makes it answer RCPT for an address with a given reply."""

    received: list[Received] = field(default_factory=list)
    replies: dict[str, str] = field(default_factory=dict)
    stall: set[str] = field(default_factory=set)  # recipients whose DATA the server never answers in time
    offer_8bitmime: bool = True  # False: EHLO leaves 8BITMIME out, as a 7-bit-only relay would

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        return responses if self.offer_8bitmime else [r for r in responses if r[4:] != "8BITMIME"]

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        reply = self.replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.stall & set(envelope.rcpt_tos):
            await asyncio.sleep(2)
            return "451 4.3.0 Too late"
        data = envelope.original_content or envelope.content
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(data), session.peer,
                                      list(envelope.mail_options)))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler
    controller: Controller

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_sender": "沈阳市医疗保障局 <sanjin@ybj.shenyang.example.gov.cn>",
            "smtp_connections": 4,
            "smtp_rate_per_second": 0.0,
            "smtp_starttls": False,
            "smtp_ssl": False,
            "smtp_username": None,
            "smtp_password": None,
        }
        values.update(overrides)
        return Settings(**values)

    def restart(self) -> None:
        """Stop and start again on the same port: every open client connection is dropped."""
        self.controller.stop()
        self.controller = Controller(self.handler, hostname=self.host, port=self.port)
        self.controller.start()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    server = SmtpServer("127.0.0.1", port, handler, controller)
    try:
        yield server
    finally:
        server.controller.stop()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2025, 10, 9, 9, 0))

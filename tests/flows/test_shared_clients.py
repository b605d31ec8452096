"""Flow runs awaited one after another in one process share one pair of Prefect API clients."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from prefect import flow, task

from flows.clients import shared_api_clients

pytestmark = pytest.mark.prefect


@task(name="test-touch")
def _touch() -> int:
    return 1


@flow(name="test-short-flow")
async def _short_flow() -> int:
    return _touch()


def _tls_contexts_made(monkeypatch: pytest.MonkeyPatch, runs: Any) -> int:
    """How many TLS contexts the flow runs made (each new Prefect client loads certifi's bundle into one)."""
    made = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    asyncio.run(runs())
    monkeypatch.setattr(ssl, "create_default_context", real)
    return len(made)


def test_flow_runs_in_shared_api_clients_build_no_client_of_their_own(
        prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def each_on_its_own() -> None:
        for _ in range(3):
            assert await _short_flow() == 1

    async def sharing() -> None:
        async with shared_api_clients():
            for _ in range(3):
                assert await _short_flow() == 1

    alone = _tls_contexts_made(monkeypatch, each_on_its_own)
    shared = _tls_contexts_made(monkeypatch, sharing)
    assert alone >= 6  # at least two new clients per flow run
    assert shared <= 2  # the shared pair, made once

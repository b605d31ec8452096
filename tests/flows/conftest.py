"""Prefect's test harness once per test process, with the heartbeat wait switched off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A temporary Prefect server for the whole session; yields its API URL for subprocesses."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        try:
            from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY

            quiet = temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})
        except ImportError:  # older releases have no heartbeat setting
            from contextlib import nullcontext

            quiet = nullcontext()  # type: ignore[assignment]
        with quiet:
            yield str(PREFECT_API_URL.value())

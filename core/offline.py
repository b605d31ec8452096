"""The product runs on an intranet with no way out: the libraries under it are told not to phone home.

Prefect's embedded server sends a telemetry heartbeat unless `PREFECT_SERVER_ANALYTICS_ENABLED` is false, and its
SDK reports first-use events unless `DO_NOT_TRACK` is set (issue #18). Set as defaults, so an operator who wants
otherwise can still say so in the environment.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

OFFLINE_ENVIRONMENT: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # the server's telemetry heartbeat
    "DO_NOT_TRACK": "1",  # the SDK's usage events (prefect._internal.analytics)
}


def apply_offline_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set each offline default the environment does not set already; returns what was set."""
    target = os.environ if environ is None else environ
    applied = {k: v for k, v in OFFLINE_ENVIRONMENT.items() if k not in target}
    target.update(applied)
    return applied

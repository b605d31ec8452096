"""Publication: the public lists republished on a schedule and on change (SPEC "Published artefacts").

"On change" needs no trigger of its own: an unchanged list costs one content hash and writes nothing,
so running this often (its deployment's schedule, or after the daily program run) publishes a change
the next time it runs. A drug list with new or changed drugs is left to the manager's approval gate.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from core.clock_store import DatabaseClock
from core.db import shared_engine
from core.settings import get_settings
from flows.product_flow import product_flow
from tasks.lists.publication import publish


@task(name="publish-lists", retries=2, retry_delay_seconds=30)
def publish_step(program: str) -> list[dict[str, Any]]:
    """Publish and render both lists; safe to retry: versions are keyed by content, files by version."""
    engine = shared_engine()
    results = publish(engine, program, clock=DatabaseClock(engine), out_dir=get_settings().output_dir)
    return [r.as_json() for r in results]


@product_flow("publication")
async def publication_flow(program: str) -> dict[str, Any]:
    """Load → publish what changed (drugs only if no approval is due) → files and index; one task."""
    results = publish_step(program)
    return {r["list"]: r for r in results}

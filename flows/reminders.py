"""The daily reminder run: enqueue what the rules make due today, then deliver the outbox.

Apart from the phase flows because reminders cut across phases (accounts, contracts, payments,
quarterly statistics) and keep running long after the enrollment windows closed.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import task

from core.clock_store import DatabaseClock
from core.db import shared_engine
from flows.product_flow import product_flow
from flows.steps import send_notices_step
from tasks.calendar.schedules import settle_provisional
from tasks.outbox.reminders import send_reminders


@task(name="send-reminders")
def reminders_step(program: str) -> dict[str, Any]:
    """One task run for the whole program (never one per institution); re-running it enqueues nothing twice."""
    engine = shared_engine()
    clock = DatabaseClock(engine)
    settled = settle_provisional(engine, program, clock=clock)  # letters carry official dates where known
    return {**asdict(send_reminders(engine, program, clock=clock)), "provisional_dates_settled": settled}


@product_flow("reminders")
async def reminders_flow(program: str) -> dict[str, Any]:
    """Enqueue, then send: sending is its own retrying task, so a mail outage never re-runs the rules."""
    reminders = reminders_step(program)
    notices = send_notices_step()
    return {"reminders": reminders, "notices": notices}

"""A phase flow's progress table counts its own phase only (figure 1: the accounts and contracts flows read every
application of the program for a table that never shows them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event

from models.program_definition import PhaseName
from tasks.status import program_status
from tests.factories import clock_at, make_institution, make_program, make_running_application, shanghai


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(" ".join(statement.split()).lower())

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_phase_counts_its_own_states_only(engine: Engine) -> None:
    program = make_program(engine)
    make_running_application(engine, program, make_institution(engine), running_at=shanghai(2025, 9, 30, 18))
    clock = clock_at(2025, 10, 8, 9)

    everything = program_status(engine, program.slug, clock=clock, outbox=False)
    counts = {p.phase: p.counts for p in everything.phases}
    assert counts[PhaseName.ENROLLMENT.value]  # one running application, one batch

    with statements(engine) as seen:
        accounts = program_status(engine, program.slug, clock=clock, outbox=False, only={PhaseName.ACCOUNTS})
    assert not [s for s in seen if "from application" in s and "group by application.state" in s], seen
    assert [p.phase for p in accounts.phases] == [p.phase for p in everything.phases]  # every phase still listed
    only = {p.phase: p.counts for p in accounts.phases}
    assert only[PhaseName.ACCOUNTS.value] == counts[PhaseName.ACCOUNTS.value]
    assert only[PhaseName.ENROLLMENT.value] == {}

    enrollment = program_status(engine, program.slug, clock=clock, outbox=False, only={PhaseName.ENROLLMENT})
    assert {p.phase: p.counts for p in enrollment.phases}[PhaseName.ENROLLMENT.value] == counts[PhaseName.ENROLLMENT.value]

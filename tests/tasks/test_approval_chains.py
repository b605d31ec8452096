"""Every shipped program file's approval chain, followed as written: each level in order, no level it lacks."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from models.enrollment import Application, Gate
from models.program_definition import ProgramDefinition
from models.states import ApplicationState, GateKind, GateState
from tasks.gates.deciding import decide_gate
from tasks.phases.enrollment import reconcile_enrollment
from tests.factories import (
    PROGRAM_FILES,
    clock_at,
    make_applications,
    make_institution,
    make_program,
    make_reviewers,
    shanghai,
)

# (submitted, the day after the program's first batch cut-off)
_DAYS: dict[str, tuple[datetime, datetime]] = {
    "shenyang-2025": (shanghai(2025, 9, 12, 10), shanghai(2025, 9, 22, 9)),
    "ningxia-2025": (shanghai(2026, 2, 2, 10), shanghai(2026, 2, 24, 9)),
    "jiangxi-2025": (shanghai(2025, 9, 10, 10), shanghai(2025, 10, 9, 9)),
}
_KIND = {"district": GateKind.DISTRICT_REVIEW, "city": GateKind.CITY_REVIEW}


def _open_gates(engine: Engine) -> list[Gate]:
    with Session(engine) as session:
        return list(session.exec(select(Gate).where(Gate.state == GateState.OPEN)  # type: ignore[call-overload]
                                 .order_by(Gate.id)).scalars())


def test_every_shipped_program_file_has_a_chain_test() -> None:
    assert set(_DAYS) == set(PROGRAM_FILES)


@pytest.mark.parametrize("slug", sorted(_DAYS))
def test_applications_pass_each_level_of_the_program_files_chain_in_order_and_no_other(
        engine: Engine, slug: str) -> None:
    program = make_program(engine, slug)
    defn = ProgramDefinition.model_validate(program.definition)
    districts = [d.name for d in defn.districts[:2]]
    reviewers = make_reviewers(engine, districts)
    institutions = [make_institution(engine, district=d) for d in districts]
    make_applications(engine, program, institutions, submitted_at=_DAYS[slug][0])
    clock = clock_at(2025, 8, 1)
    clock.set(_DAYS[slug][0])
    reconcile_enrollment(engine, slug, clock=clock)
    clock.set(_DAYS[slug][1])
    for i, level in enumerate(defn.approval_chain):
        reconcile_enrollment(engine, slug, clock=clock)
        gates = _open_gates(engine)
        assert {g.kind for g in gates} == {_KIND[level.level]}, f"level {i + 1}: {level.label}"
        with Session(engine) as session:
            states = set(session.execute(select(Application.state)).scalars())
        assert states == {ApplicationState.SUBMITTED if i == 0 else ApplicationState.DISTRICT_APPROVED}
        for gate in gates:
            user = reviewers[gate.district] if gate.district else "manager"
            decide_gate(engine, gate.id, approve=gate.items, user_name=user, clock=clock)
    report = reconcile_enrollment(engine, slug, clock=clock)
    assert _open_gates(engine) == []  # no gate the file does not define
    assert report.running == [1]
    with Session(engine) as session:
        assert set(session.execute(select(Application.state)).scalars()) == {ApplicationState.RUNNING}

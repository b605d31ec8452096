"""A task's error reaches the flow (and the person) whole after Prefect pickles it across processes."""

from __future__ import annotations

import pickle
from datetime import date

import pytest

from models.program_definition import PhaseName, ProgramFileError
from models.states import ApplicationState
from models.transitions import InvalidTransition
from models.validators import FieldError
from models.windows import PhaseNotInProgram, WindowClosed
from models.workdays import CalendarOverridesError

ERRORS = [
    WindowClosed("沈阳", PhaseName.ENROLLMENT, date(2025, 8, 7), date(2025, 9, 19), date(2025, 9, 22)),
    PhaseNotInProgram("宁夏", PhaseName.ALLIANCE),
    InvalidTransition("application", 7, ApplicationState.RUNNING, "submit", ["suspend"]),
    FieldError("uscc", "123", "uscc.length", "统一社会信用代码应为18位"),
    ProgramFileError("shenyang-2025.yaml", [("phases[0].window.closes", "早于开始日期")]),
    CalendarOverridesError("overrides.yaml", ["2027-01-01: 未知类型"]),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_an_error_survives_pickling_with_its_message_and_fields(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)

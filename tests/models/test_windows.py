"""Submissions are accepted only inside a phase's window, judged on the Shanghai calendar day."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.clock import SHANGHAI
from models.labels import PHASE_LABELS
from models.program_definition import PhaseName, ProgramDefinition, load_program_file
from models.windows import PhaseNotInProgram, WindowClosed, require_open

SHENYANG = Path(__file__).resolve().parents[2] / "deploy" / "programs" / "shenyang-2025.yaml"
ENROLLMENT = PhaseName.ENROLLMENT
CONTINUOUS = PhaseName.CONTINUOUS_REVIEW


@pytest.fixture(scope="module")
def shenyang() -> ProgramDefinition:
    return load_program_file(SHENYANG)


def at(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize("moment", [at(2025, 9, 9, 0, 0), at(2025, 9, 9, 23, 59)], ids=["09-09 00:00", "09-09 23:59"])
def test_an_application_the_day_before_enrollment_opens_is_refused(shenyang, moment):
    with pytest.raises(WindowClosed) as info:
        require_open(shenyang, ENROLLMENT, moment)
    message = str(info.value)
    assert "「组织医药机构参加」" in message
    assert "2025-09-10" in message and "2025-09-30" in message
    assert "尚未开始" in message and "2025-09-09 不接受提交" in message
    assert (info.value.phase, info.value.on.isoformat()) == (ENROLLMENT, "2025-09-09")


@pytest.mark.parametrize("moment", [at(2025, 10, 1, 0, 0), at(2025, 10, 1, 23, 59)], ids=["10-01 00:00", "10-01 23:59"])
def test_an_application_the_day_after_enrollment_closes_is_refused(shenyang, moment):
    with pytest.raises(WindowClosed) as info:
        require_open(shenyang, ENROLLMENT, moment)
    message = str(info.value)
    assert f"「{PHASE_LABELS[ENROLLMENT]}」窗口（2025-09-10 至 2025-09-30）已经结束" in message
    assert "has closed" in message and "2025-10-01" in message


@pytest.mark.parametrize("moment", [at(2025, 9, 10, 0, 0), at(2025, 9, 10, 23, 59), at(2025, 9, 30, 0, 0),
                                    at(2025, 9, 30, 23, 59)],
                         ids=["opening day 00:00", "opening day 23:59", "closing day 00:00", "closing day 23:59"])
def test_the_opening_and_closing_days_are_inside_the_window(shenyang, moment):
    assert require_open(shenyang, ENROLLMENT, moment) is ENROLLMENT


def test_a_utc_evening_on_the_closing_day_is_already_the_next_shanghai_day(shenyang):
    late = datetime(2025, 9, 30, 16, 30, tzinfo=UTC)  # 2025-10-01 00:30 in Shanghai
    with pytest.raises(WindowClosed) as info:
        require_open(shenyang, ENROLLMENT, late)
    assert info.value.on.isoformat() == "2025-10-01"
    assert require_open(shenyang, ENROLLMENT, datetime(2025, 9, 30, 15, 59, tzinfo=UTC)) is ENROLLMENT


def test_applications_in_december_are_taken_by_continuous_review(shenyang):
    assert require_open(shenyang, (ENROLLMENT, CONTINUOUS), at(2025, 12, 1, 0, 0)) is CONTINUOUS
    assert require_open(shenyang, (ENROLLMENT, CONTINUOUS), at(2025, 12, 31, 23, 59)) is CONTINUOUS
    assert require_open(shenyang, (ENROLLMENT, CONTINUOUS), at(2025, 9, 20, 9, 0)) is ENROLLMENT


def test_between_enrollment_and_continuous_review_the_refusal_names_enrollment(shenyang):
    with pytest.raises(WindowClosed) as info:
        require_open(shenyang, (ENROLLMENT, CONTINUOUS), at(2025, 11, 15, 9, 0))
    assert info.value.phase is ENROLLMENT
    assert "组织医药机构参加" in str(info.value) and "2025-09-30" in str(info.value)


def test_an_open_ended_window_is_named_as_such_when_it_has_not_opened(shenyang):
    with pytest.raises(WindowClosed) as info:
        require_open(shenyang, CONTINUOUS, at(2025, 11, 30, 23, 59))
    assert "（2025-12-01 至 长期）尚未开始" in str(info.value)
    assert "open-ended" in str(info.value)


def test_a_program_specific_phase_label_is_the_one_named(shenyang):
    relabelled = [p.model_copy(update={"label": "医药机构报名"}) if p.name is ENROLLMENT else p
                  for p in shenyang.phases]
    defn = shenyang.model_copy(update={"phases": relabelled})
    with pytest.raises(WindowClosed) as info:
        require_open(defn, ENROLLMENT, at(2025, 10, 1, 9, 0))
    assert "「医药机构报名」" in str(info.value)


def test_a_disabled_phase_is_not_a_window(shenyang):
    disabled = [p.model_copy(update={"enabled": False}) if p.name is ENROLLMENT else p for p in shenyang.phases]
    defn = shenyang.model_copy(update={"phases": disabled})
    with pytest.raises(PhaseNotInProgram):
        require_open(defn, ENROLLMENT, at(2025, 9, 20, 9, 0))
    assert require_open(defn, (ENROLLMENT, CONTINUOUS), at(2025, 12, 2, 9, 0)) is CONTINUOUS

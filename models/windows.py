"""Whether a phase accepts submissions at a given moment, and the error that names the window."""

from __future__ import annotations

from datetime import date, datetime

from models.clock import local_date
from models.labels import PHASE_LABELS
from models.program_definition import PhaseName, ProgramDefinition


class WindowClosed(Exception):
    """A submission outside its phase's window; the message names the window in Chinese and English."""

    def __init__(self, program: str, phase: PhaseName, opens: date, closes: date | None, on: date,
                 label: str | None = None) -> None:
        self._args = (program, phase, opens, closes, on, label)
        self.program = program
        self.phase = phase
        self.opens = opens
        self.closes = closes
        self.on = on
        closes_txt = closes.isoformat() if closes else "长期"
        when = "尚未开始" if on < opens else "已经结束"
        when_en = "has not opened yet" if on < opens else "has closed"
        super().__init__(
            f"{program}「{label or PHASE_LABELS[phase]}」窗口（{opens.isoformat()} 至 {closes_txt}）{when}，"
            f"{on.isoformat()} 不接受提交 / the {phase.value.replace('_', ' ')} window of {program} "
            f"({opens.isoformat()} to {closes.isoformat() if closes else 'open-ended'}) {when_en}: "
            f"submissions on {on.isoformat()} are refused"
        )

    def __reduce__(self) -> tuple[type[WindowClosed], tuple[object, ...]]:
        # Prefect pickles a task's exception to hand it back; rebuild it from its arguments.
        return (type(self), self._args)


class PhaseNotInProgram(Exception):
    def __init__(self, program: str, phase: PhaseName) -> None:
        self._args = (program, phase)
        super().__init__(f"{program} 没有「{PHASE_LABELS[phase]}」阶段 / {program} has no {phase.value} phase")

    def __reduce__(self) -> tuple[type[PhaseNotInProgram], tuple[object, ...]]:
        return (type(self), self._args)


def accepts_submissions(defn: ProgramDefinition, phase: PhaseName, on: date) -> bool:
    spec = defn.phase(phase)
    return spec is not None and spec.enabled and spec.window.contains(on)


def require_open(defn: ProgramDefinition, phases: PhaseName | tuple[PhaseName, ...], at: datetime) -> PhaseName:
    """The first of `phases` whose window is open at `at` (Shanghai date), or WindowClosed for the first.

    Enrollment takes several phases: after its own window closes, continuous review keeps accepting
    applications into new batches (seed 000 "成熟一批、运行一批", 持续推进).
    """
    wanted = (phases,) if isinstance(phases, PhaseName) else phases
    on = local_date(at)
    first = None
    for phase in wanted:
        spec = defn.phase(phase)
        if spec is None or not spec.enabled:
            continue
        first = first or spec
        if spec.window.contains(on):
            return phase
    if first is None:
        raise PhaseNotInProgram(defn.name, wanted[0])
    raise WindowClosed(defn.name, first.name, first.window.opens, first.window.closes, on, label=first.display_label)

"""The errors a person can cause and fix; the CLI (and later the web) shows them as messages."""

from __future__ import annotations

from core.clock_store import SimulatedClockRefused
from models.holiday_notice import HolidayNoticeError
from models.program_definition import ProgramFileError
from models.quarterly import QuarterError
from models.transitions import InvalidTransition
from models.validators import FieldError
from models.windows import PhaseNotInProgram, WindowClosed
from models.workdays import CalendarYearUnknown
from tasks.calendar.schedules import CalendarEntryError
from tasks.gates.rows import GateError
from tasks.intake.import_files import ProgramNotFound
from tasks.intake.spreadsheets import ImportRejected, SpreadsheetError
from tasks.lists.publication import UnknownList
from tasks.phases.alliance import UnknownCity
from tasks.platform.files import RecordRejected
from tasks.programs import UnknownProgram
from tasks.users import BadUser

USER_ERRORS: tuple[type[BaseException], ...] = (
    ProgramFileError, InvalidTransition, FieldError, WindowClosed, PhaseNotInProgram, CalendarYearUnknown,
    UnknownCity, GateError, ImportRejected, UnknownProgram, BadUser, FileNotFoundError, RecordRejected,
    ProgramNotFound, SpreadsheetError, UnknownList, HolidayNoticeError, CalendarEntryError,
    SimulatedClockRefused, QuarterError,
)

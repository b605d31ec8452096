"""The errors a person can cause and fix; the CLI (and later the web) shows them as messages."""

from __future__ import annotations

from models.program_definition import ProgramFileError
from models.transitions import InvalidTransition
from models.validators import FieldError
from models.windows import PhaseNotInProgram, WindowClosed
from models.workdays import CalendarYearUnknown
from tasks.accounts_contracts import RecordRejected
from tasks.alliance import UnknownCity
from tasks.gates import GateError
from tasks.imports import ImportRejected, ProgramNotFound
from tasks.programs import UnknownProgram
from tasks.publication import UnknownList
from tasks.spreadsheets import SpreadsheetError
from tasks.users import BadUser

USER_ERRORS: tuple[type[BaseException], ...] = (
    ProgramFileError, InvalidTransition, FieldError, WindowClosed, PhaseNotInProgram, CalendarYearUnknown,
    UnknownCity, GateError, ImportRejected, UnknownProgram, BadUser, FileNotFoundError, RecordRejected,
    ProgramNotFound, SpreadsheetError, UnknownList,
)

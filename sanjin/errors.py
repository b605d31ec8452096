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
from tasks.compliance.compliance_pass import CompliancePassIncomplete
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
    # Not a person's mistake, but what a person does about it is in the message: run the pass again.
    CompliancePassIncomplete,
)


def environment_message(exc: BaseException) -> str | None:
    """A bilingual message for what the installation got wrong (a setting, the database), or None.

    Never the value of a setting (a short secret key was echoed in full, issue #18), never the SQL or its
    parameters (names, phones and credit codes of the rows being written), never a traceback.
    """
    from pydantic import ValidationError
    from sqlalchemy import exc as sa

    if isinstance(exc, ValidationError) and exc.title in _SETTINGS_PREFIX:
        prefix = _SETTINGS_PREFIX[exc.title]
        problems = [f"{prefix}{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        return "配置有误 / invalid setting: " + "; ".join(problems)
    if isinstance(exc, sa.DBAPIError):
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None and str(exc.orig).strip() else ""
        if isinstance(exc, sa.OperationalError | sa.ProgrammingError) and _missing_table(detail):
            return "数据库尚未建立或版本过旧，请先运行 `sanjin db upgrade` / the database schema is missing or old: " \
                   "run `sanjin db upgrade` first"
        if isinstance(exc, sa.OperationalError) and _unreachable(detail):
            return f"无法连接数据库，请检查 SANJIN_DATABASE_URL 与数据库服务 / cannot connect to the database: {detail}"
        return (f"数据库操作失败，本次操作未写入任何数据（{type(exc.orig).__name__}） / a database operation failed and "
                "nothing was written; try again, or ask the administrator")
    if isinstance(exc, RuntimeError) and "ephemeral Prefect API server" in str(exc):
        # Without PREFECT_API_URL, `run` starts a temporary Prefect server and waits 20 s for it; on a loaded
        # machine it printed Prefect's 55-line traceback instead (seen trying `sanjin run` in session 11).
        return ("Prefect 临时服务未能在时限内启动（机器负载过高？），流程没有开始；请稍后重试，或调大 "
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS，或启动 Prefect 服务并设置 PREFECT_API_URL / the temporary "
                "Prefect server did not start in time and no flow ran: try again, raise "
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or run a Prefect server and set PREFECT_API_URL")
    return None


_SETTINGS_PREFIX = {"Settings": "SANJIN_", "WebSettings": "SANJIN_WEB_"}


def _missing_table(detail: str) -> bool:
    return "no such table" in detail or ("relation" in detail and "does not exist" in detail)


def _unreachable(detail: str) -> bool:
    words = ("connection refused", "could not connect", "connection to server", "could not translate host name",
             "timeout expired", "unable to open database file", "password authentication failed", "no route to host",
             "name or service not known")
    return any(w in detail.lower() for w in words)

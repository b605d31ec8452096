"""Loading a program file into the database, and finding a program's definition again."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, Engine, delete, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from core.bulk import write_audit
from core.db import transaction
from models.clock import Clock
from models.program import PhaseWindow, Program
from models.program_definition import ProgramDefinition, load_program_file, program_content_hash
from models.states import Role
from models.transitions import AuditRecord

log = logging.getLogger(__name__)
LOCK_WAIT_LOG_SECONDS = 0.5  # a wait for the program lock longer than this is logged


class UnknownProgram(LookupError):
    def __init__(self, slug: str, known: list[str]) -> None:
        super().__init__(
            f"没有名为 {slug!r} 的项目 / no program {slug!r} (loaded: {', '.join(known) or 'none'}); "
            "load it with `sanjin program load FILE`"
        )


@dataclass(frozen=True)
class LoadResult:
    program_id: int
    slug: str
    outcome: Literal["created", "updated", "unchanged"]


def load_program(engine: Engine, path: Path, *, clock: Clock, actor: str = "system") -> LoadResult:
    """Create or update a program from its file; loading the same content twice changes nothing."""
    defn = load_program_file(path)
    digest = program_content_hash(defn)
    now = clock.now()
    with transaction(engine) as session:
        program = session.exec(select(Program).where(Program.slug == defn.slug)).first()
        if program is not None and program.content_hash == digest:
            return LoadResult(program.id or 0, defn.slug, "unchanged")
        outcome: Literal["created", "updated"] = "created" if program is None else "updated"
        if program is None:
            program = Program(slug=defn.slug, name=defn.name, region=defn.region, region_code=defn.region_code,
                              definition={}, content_hash="")
        program.name, program.region, program.region_code = defn.name, defn.region, defn.region_code
        program.definition = defn.model_dump(mode="json")
        program.content_hash = digest
        program.source_path = str(path)
        program.loaded_at = now
        session.add(program)
        session.flush()
        assert program.id is not None
        session.execute(delete(PhaseWindow).where(PhaseWindow.program_id == program.id))  # type: ignore[arg-type]
        for spec in defn.timeline(include_disabled=True):
            session.add(PhaseWindow(program_id=program.id, phase=spec.name.value, label=spec.display_label,
                                    opens_on=spec.window.opens, closes_on=spec.window.closes))
        write_audit(session, [AuditRecord(entity="program", entity_id=program.id, action=f"load_{outcome}",
                                          from_state=None, to_state=None, actor=actor, role=Role.PROGRAM_MANAGER,
                                          at=now, program_id=program.id, data={"hash": digest, "file": str(path)})])
        return LoadResult(program.id, defn.slug, outcome)


def get_program(session: Session, slug: str) -> tuple[Program, ProgramDefinition]:
    """The program row and its validated definition, or UnknownProgram naming what is loaded."""
    program = session.exec(select(Program).where(Program.slug == slug)).first()
    if program is None:
        known = list(session.exec(select(Program.slug)).all())
        raise UnknownProgram(slug, known)
    return program, ProgramDefinition.model_validate(program.definition)


# The Chinese half of the lock's log line: `sanjin run` prints it, and "开始enrollment" was a code in a sentence.
LOCK_WHAT = {"enrollment": "机构申报", "reminders": "发送提醒", "compliance pass": "合规检查",
             "enforcement pass": "处理措施", "platform reconciliation": "平台数据核对",
             "reconcile the alliance": "联盟邀请", "reconcile the drug list": "药品清单征集"}


def lock_program(session: Session | Connection, program_id: int, *, slug: str | None = None,
                 what: str = "reconcile") -> None:
    """Hold the program for the rest of the transaction: one reconciler of a program at a time.

    Two workers (or a schedule and `sanjin run`) reconciling one program would both read "no batch yet"
    and both write one. A no-op UPDATE is the portable lock, as publication takes it: a row lock on
    PostgreSQL, the database's write lock on SQLite (whose driver begins the transaction at the first
    write, so every read after it sees what the previous holder committed). Other programs go on.

    The second one waits, and says so: on PostgreSQL a NOWAIT probe (in a savepoint, so its refusal
    leaves the transaction usable) logs "waiting" before the wait; on both, a wait longer than
    `LOCK_WAIT_LOG_SECONDS` is logged with its length once the lock is held.
    """
    name = slug or f"#{program_id}"
    dialect = session.get_bind().dialect if isinstance(session, Session) else session.dialect
    if dialect.name == "postgresql":
        try:
            with session.begin_nested():
                session.execute(select(Program.id).where(Program.id == program_id)
                                .with_for_update(nowait=True))
            return
        except OperationalError:
            log.warning("项目 %s 正由另一个运行处理，等待其完成后再%s / program %s is held by another run: waiting "
                        "for it before this %s", name, LOCK_WHAT.get(what, "运行"), name, what)
    started = time.monotonic()
    session.execute(update(Program).where(Program.id == program_id).values(id=Program.id))  # type: ignore[arg-type]
    waited = time.monotonic() - started
    if waited >= LOCK_WAIT_LOG_SECONDS:
        log.warning("项目 %s：等待另一个运行 %.1f 秒后开始%s / program %s: waited %.1f s for another run before this %s",
                    name, waited, LOCK_WHAT.get(what, "本次运行"), name, waited, what)


def list_programs(engine: Engine) -> list[Program]:
    with Session(engine) as session:
        return list(session.exec(select(Program).order_by(Program.slug)).all())


PROGRAMS_DIR = Path(__file__).resolve().parent.parent / "deploy" / "programs"


def shipped_program_files() -> list[Path]:
    return sorted(PROGRAMS_DIR.glob("*.yaml"))

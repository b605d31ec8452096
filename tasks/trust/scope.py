"""What a signed-in person may see: a district reviewer only its own districts' rows, everyone else the whole program.

One place for the rule, so the notices, the audit trail and the laggards (and the CLI's `--as`) scope alike.
A reviewer sees a notice addressed to an institution of its districts or to itself; an audit row about an
application, an institution's account, contract or selection, or a gate of its districts, or one it wrote itself.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Integer, case, cast, false, func, or_, select, true
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from core.sql_hints import unindexed
from models.audit import AuditEvent
from models.enrollment import Application, Gate, Institution
from models.operations import Contract, PlatformAccount, Selection
from models.outbox import Notice
from models.program import User
from models.states import Role


def districts_of(user: User) -> list[str] | None:
    """The districts a user is confined to; None for a user who sees every district."""
    return list(user.districts) if user.role == Role.DISTRICT_REVIEWER else None


def may_see_district(user: User, district: str | None) -> bool:
    mine = districts_of(user)
    return mine is None or (district is not None and district in mine)


def notice_scope(user: User) -> ColumnElement[bool] | None:
    """The notices a user may read (their e-mail addresses included); None: all of them."""
    mine = districts_of(user)
    if mine is None:
        return None
    # The districts' institutions as one subquery (read once by the district index), not a probe of the
    # institution per notice: the outbox page walks notices newest first, and a district whose notices are
    # the oldest made that walk probe ~100,000 institutions (142 ms CPU a page, issue #19). With the recipient
    # index (migration 0023) the database may also start from the district's notices and sort them.
    theirs = select(col(Institution.id)).where(col(Institution.district).in_(mine))
    return or_(
        (col(Notice.recipient_type) == "institution") & col(Notice.recipient_id).in_(theirs),
        (col(Notice.recipient_type) == "user") & (col(Notice.recipient_id) == user.id),
    )


def notice_counts(session: Session, user: User, *, program_id: int | None = None) -> dict[str, int]:
    """How many notices of each status a user may read (notice_scope's rule), in one program when given.

    A district reviewer's are counted from its districts' institutions through the recipient index
    (migration 0023): notice_scope checked for every notice of the outbox cost 137 ms a page at 100,000
    institutions (issue #19); this reads the district's institutions and their notices' index entries only.
    """
    status = col(Notice.status)
    mine = districts_of(user)
    if mine is None:
        where = [] if program_id is None else [col(Notice.program_id) == program_id]
        return _by_status(session, select(status, func.count()).where(*where).group_by(status))
    # unindexed: SQLite takes the recipient index, not the program's, which would read the program's every notice.
    program = [] if program_id is None else [unindexed(col(Notice.program_id)) == program_id]
    theirs = select(col(Institution.id)).where(col(Institution.district).in_(mine))
    counts = _by_status(session, select(status, func.count()).where(
        col(Notice.recipient_type) == "institution", col(Notice.recipient_id).in_(theirs), *program).group_by(status))
    own = _by_status(session, select(status, func.count()).where(
        col(Notice.recipient_type) == "user", col(Notice.recipient_id) == user.id, *program).group_by(status))
    return {k: counts.get(k, 0) + own.get(k, 0) for k in counts.keys() | own.keys()}


def _by_status(session: Session, query: Any) -> dict[str, int]:
    return {str(getattr(k, "value", k)): int(n) for k, n in session.execute(query).all()}


def audit_scope(user: User) -> ColumnElement[bool] | None:
    """The audit rows a user may read; None: all of them.

    Checked row by row as the audit page walks its index (newest first), each by a primary-key probe of
    the row it is about: an `entity_id IN (every application of the districts …)` would read the whole
    application, account and contract tables before the first row of every page (seconds at 100,000
    institutions, issue #19). The id is cast only for its own entity (CASE), where it is a number.

    The probe is a scalar subquery (the row's district, compared with the reviewer's), not EXISTS: PostgreSQL
    may run an EXISTS as one hashed subplan, built first from every application of the districts (a scan of
    the whole table, 50–70 ms a page at 100,000), or every account and contract joined with their institutions;
    a scalar subquery it runs per row, as SQLite does, by the primary key.
    """
    mine = districts_of(user)
    if mine is None:
        return None
    if not mine:
        return false()
    entity, entity_id = col(AuditEvent.entity), col(AuditEvent.entity_id)
    target = cast(entity_id, Integer)

    def district_of(table: Any, key: Any, via: Any | None = None) -> Any:
        if via is None:  # the row holds its district
            return select(col(table.district)).where(col(key) == target).scalar_subquery()
        return (select(col(Institution.district)).join(table, col(Institution.id) == col(via))
                .where(col(key) == target).scalar_subquery())

    owned: list[tuple[str, Any]] = [
        ("application", district_of(Application, Application.id)),
        ("gate", district_of(Gate, Gate.id)),
        ("platform_account", district_of(PlatformAccount, PlatformAccount.id, PlatformAccount.institution_id)),
        ("contract", district_of(Contract, Contract.id, Contract.institution_id)),
        ("selection", district_of(Selection, Selection.id, Selection.institution_id)),
    ]
    about: list[ColumnElement[bool]] = [col(AuditEvent.actor) == user.name]
    for name, district in owned:
        about.append(case((entity == name, district.in_(mine)), else_=false()) == true())
    return or_(*about)


def acting_user(engine: Engine, name: str) -> User:
    """The active user a command acts as (`--as`); a clear message for a name nobody holds."""
    from sqlmodel import Session
    from sqlmodel import select as orm_select

    from tasks.users import BadUser

    with Session(engine) as session:
        user = session.exec(orm_select(User).where(col(User.name) == name)).first()
    if user is None or not user.active:
        raise BadUser(f"没有名为“{name}”的在用账户 / no active user named {name!r}")
    return user


def check_districts(user: User, asked: list[str] | None) -> list[str] | None:
    """The districts a listing covers for `user`: those asked for (each must be the user's), or all the user's."""
    mine = districts_of(user)
    if mine is None:
        return asked
    from tasks.users import BadUser

    foreign = [d for d in (asked or []) if d not in mine]
    if foreign:
        raise BadUser(f"{user.name} 只能查看本人负责的区县（{'、'.join(mine)}），不能查看{'、'.join(foreign)} / "
                      f"{user.name} may only see its own districts")
    return asked or mine


__all__ = ["acting_user", "audit_scope", "check_districts", "districts_of", "may_see_district", "notice_counts",
           "notice_scope"]

"""The checks of an application file beyond its own cells: between its rows and against the database.

Duplicated USCCs and insurance codes, codes owned by another institution, proxy parents in the
file or in the system, and re-applications of institutions already in the program. Each reads
the database in a few bulk queries, never one per row, for the 100,000-row target.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from core.bulk import chunked, table_of
from models.application_rules import Reapplication, check_proxy_parent, reapplication
from models.enrollment import Application, Institution
from models.states import ApplicationState, InstitutionKind
from models.validators import FieldError
from tasks.intake.application_rows import Applications
from tasks.intake.spreadsheets import RowError

__all__ = [
    "cross_checks",
]


@dataclass(frozen=True)
class _Known:
    """An institution already in the database, as far as the importer needs it."""

    id: int
    uscc: str
    code: str
    name: str
    kind: InstitutionKind
    district: str
    proxy_parent_id: int | None


def _known_institutions(session: Session, usccs: Sequence[str], codes: Sequence[str]) -> list[_Known]:
    """The institutions in the database with one of these USCCs or insurance codes.

    By IN-lists of 5,000 when the file is small beside the table (a district's weekly upload);
    when it is not (a first upload of a whole province: 40 lists of 5,000), reading the whole
    table once is cheaper, and an empty table needs no query at all.
    """
    t = table_of(Institution)
    cols = (t.c.id, t.c.uscc, t.c.insurance_code, t.c.name, t.c.kind, t.c.district, t.c.proxy_parent_id)
    wanted_usccs, wanted_codes = set(usccs), set(codes)
    in_table = int(session.execute(select(func.count()).select_from(t)).scalar_one())
    if not in_table or not (wanted_usccs or wanted_codes):
        return []
    found: dict[int, _Known] = {}

    def keep(rows: Iterable[Any]) -> None:
        for r in rows:
            found[int(r.id)] = _Known(int(r.id), r.uscc, r.insurance_code, r.name, InstitutionKind(r.kind),
                                      r.district, r.proxy_parent_id)

    if in_table <= 4 * (len(wanted_usccs) + len(wanted_codes)):
        keep(r for r in session.execute(select(*cols))
             if r.uscc in wanted_usccs or r.insurance_code in wanted_codes)
        return list(found.values())
    for column, values in ((t.c.uscc, wanted_usccs), (t.c.insurance_code, wanted_codes)):
        for chunk in chunked(sorted(values)):
            keep(session.execute(select(*cols).where(column.in_(chunk))))
    return list(found.values())


def _latest_applications(
    session: Session, program_id: int, institution_ids: Sequence[int]
) -> dict[int, tuple[int, ApplicationState]]:
    """institution id → (highest attempt, its state) in this program."""
    t = table_of(Application)
    latest: dict[int, tuple[int, ApplicationState]] = {}
    for chunk in chunked(sorted(set(institution_ids))):
        rows = session.execute(
            select(t.c.institution_id, t.c.attempt, t.c.state)
            .where(t.c.program_id == program_id, t.c.institution_id.in_(chunk))
        )
        for r in rows:
            current = latest.get(int(r.institution_id))
            if current is None or r.attempt > current[0]:
                latest[int(r.institution_id)] = (int(r.attempt), ApplicationState(r.state))
    return latest


def _proxy_children(session: Session, parent_ids: Sequence[int]) -> set[int]:
    """Which of these institutions already buy for others (and so cannot become proxy-procured)."""
    t = table_of(Institution)
    parents: set[int] = set()
    for chunk in chunked(sorted(set(parent_ids))):
        parents.update(
            int(r[0]) for r in session.execute(select(t.c.proxy_parent_id).where(t.c.proxy_parent_id.in_(chunk)))
        )
    return parents


def _first_rows(values: Sequence[str | None], apps: Applications, column: str, rule: str, zh_what: str) -> None:
    """Report every repeat of a value, naming the row it first appeared on."""
    present = [v for v in values if v is not None]
    if len(set(present)) == len(present):
        return  # the usual case, settled in one pass
    first_row: dict[str, int] = {}
    for i, value in enumerate(values):
        if value is not None:
            first = first_row.setdefault(value, apps.numbers[i])
            if first != apps.numbers[i]:
                apps.fail(i, column, value, rule, f"{zh_what}与第{first}行重复", f"duplicates row {first}")


def cross_checks(session: Session, program_id: int, apps: Applications) -> dict[str, int]:
    """Checks between rows and against the database: duplicates, code ownership, proxy parents, re-applications.

    Returns the ids of the institutions already in the database by insurance code, for the writer
    to link proxy parents without a query per row.
    """
    _first_rows(apps.uscc, apps, "统一社会信用代码", "uscc.duplicate", "统一社会信用代码")
    _first_rows(apps.code, apps, "机构医保编码", "institution_code.duplicate", "机构医保编码")

    known = _known_institutions(
        session,
        [u for u in apps.uscc if u],
        [c for c in (*apps.code, *apps.parent_code) if c],
    )
    by_uscc = {k.uscc: k for k in known}
    by_code = {k.code: k for k in known}
    latest = _latest_applications(session, program_id, [k.id for k in by_uscc.values()])

    for i, (uscc, code) in enumerate(zip(apps.uscc, apps.code, strict=True) if known else ()):
        if uscc is None:
            continue
        mine = by_uscc.get(uscc)
        if code is not None:
            holder = by_code.get(code)
            if holder is not None and holder.uscc != uscc:
                apps.fail(i, "机构医保编码", code, "institution_code.taken",
                          f"机构医保编码已属于“{holder.name}”（{holder.uscc}）",
                          f"this insurance code belongs to another institution ({holder.uscc})")
        if mine is None:
            continue
        apps.institution_id[i] = mine.id
        apps.existing.add(i)
        previous = latest.get(mine.id)
        decision = reapplication(previous[1] if previous else None)
        if previous is not None:
            apps.attempt[i] = previous[0] + 1
        if decision is Reapplication.SKIP and previous is not None:
            apps.skip_reason[i] = (f"已有申请（第{previous[0]}次，状态 {previous[1].value}），本行未导入 / "
                                   f"already applied (attempt {previous[0]}, {previous[1].value}): row not imported")
        elif decision is Reapplication.REFUSE and previous is not None:
            apps.skip_reason[i] = ("该机构已被取消资格，不能通过导入重新申请 / the institution was disqualified and "
                                   "cannot re-apply through an upload")

    proxied = [i for i, parent in enumerate(apps.parent_code) if parent is not None]
    if not proxied:
        return {k.code: k.id for k in known}
    skip = apps.skip_reason
    file_by_code = {c: i for i, c in enumerate(apps.code) if c is not None and i not in skip}
    will_be_proxied = [apps.institution_id[i] for i in proxied if i in apps.institution_id and i not in skip]
    already_parents = _proxy_children(session, will_be_proxied)
    column = "代采上级机构医保编码"
    for i in proxied:
        code, kind = apps.parent_code[i], apps.kind[i]
        if code is None or kind is None:
            continue
        parent_kind: InstitutionKind | None
        parent_row = file_by_code.get(code)
        if parent_row is not None:
            parent_kind, parent_proxied, parent_district = (
                apps.kind[parent_row], apps.parent_code[parent_row] is not None, apps.district[parent_row]
            )
        elif (parent := by_code.get(code)) is not None:
            parent_kind, parent_proxied, parent_district = (
                parent.kind, parent.proxy_parent_id is not None, parent.district
            )
        else:
            apps.fail(i, column, code, "proxy.parent_unknown",
                      f"未找到医保编码为 {code} 的代采上级机构（本文件和系统中均没有）",
                      "no institution with this insurance code in this file or in the system")
            continue
        if parent_kind is None:
            continue  # the parent's own row already reports its bad kind
        try:
            check_proxy_parent(kind, parent_kind, parent_proxied, same_institution=code == apps.code[i],
                               parent_code=code)
        except FieldError as exc:
            apps.errors.append(RowError(apps.numbers[i], column, code, exc.message, exc.rule))
        if apps.institution_id.get(i) in already_parents:
            apps.fail(i, column, code, "proxy.is_parent",
                      "本机构已是其他机构的代采上级机构，不能再由别的机构代采",
                      "this institution buys for others already, so it cannot be proxy-procured itself")
        district = apps.district[i]
        if parent_district and district and parent_district != district:
            apps.warn(i, column, code, "proxy.other_district",
                      f"代采上级机构在{parent_district}，本机构在{district} / "
                      f"the proxy parent is in {parent_district}, this institution in {district}")
    return {k.code: k.id for k in known}

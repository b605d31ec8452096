"""Writing an accepted application file in bulk: institutions, applications, their audit rows and receipts.

Column-wise inserts (COPY on PostgreSQL, executemany on SQLite) with new ids read back by range:
RETURNING through psycopg's executemany, per-row audit objects and per-row notices each cost
seconds at 100,000 rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import Integer, String, Table, bindparam, func, literal, select, update
from sqlalchemy import cast as sql_cast
from sqlmodel import Session

from core.bulk import dialect_name, insert_columns, json_object, json_text, table_of
from models.application_rules import PriceOption
from models.audit import AuditEvent
from models.enrollment import Application, Institution
from models.states import ApplicationState, Role
from tasks.intake.application_rows import Applications
from tasks.intake.import_files import ProgramRow
from tasks.outbox.enqueue import enqueue_notices_from

__all__ = [
    "audit_submissions",
    "by_district",
    "enqueue_receipts",
    "update_contacts",
    "write_applications",
    "write_institutions",
]

T = TypeVar("T")


def _max_id(session: Session, t: Table) -> int:
    return int(session.execute(select(func.max(t.c.id))).scalar() or 0)


def write_institutions(session: Session, apps: Applications, todo: Sequence[int], known_ids: dict[str, int]) -> None:
    """Parents before children: a proxy parent is never proxied itself, so two passes resolve every id.

    ``known_ids``: institutions already in the database by insurance code (parents outside the file).
    The new ids are read back as the rows above the previous highest id that carry this file's
    USCCs: one query, where the USCCs in IN-lists took twenty, and RETURNING through psycopg's
    executemany costs seconds per 100,000 rows.
    """
    t = table_of(Institution)
    ids_by_code = dict(known_ids)
    for i, institution_id in apps.institution_id.items():
        if (code := apps.code[i]) is not None:
            ids_by_code[code] = institution_id
    uscc, code_of, parent_code = apps.uscc, apps.code, apps.parent_code

    def values(rows: Sequence[int]) -> tuple[dict[str, Sequence[Any]], dict[str, Sequence[Any]]]:
        """(columns through their types' bind processors, columns already as stored), each gathered by one
        itemgetter (in C: a list comprehension per column was 0.13 s of CPU at 100,000 rows)."""
        column = _gather(rows)
        return {
            "name": column(apps.name), "address": column(apps.address), "uscc": column(uscc),
            "legal_rep": column(apps.legal_rep), "insurance_code": column(code_of),
            "contact_name": column(apps.contact_name), "phone": column(apps.phone), "email": column(apps.email),
            "district": column(apps.district),
            "proxy_parent_id": [None if (parent := parent_code[i]) is None else ids_by_code[parent] for i in rows],
        }, {  # a bool is what both drivers bind for BOOLEAN: SQLAlchemy's processor (0.1 s a column) adds nothing
            "private_tertiary": list(map(bool, column(apps.private_tertiary))),
            "special_designated": list(map(bool, column(apps.special))),
        }

    for proxied in (False, True):
        batch = [i for i in todo if i not in apps.existing and (parent_code[i] is not None) == proxied]
        if not batch:
            continue
        above = _max_id(session, t)
        columns, stored = values(batch)
        insert_columns(session, t, columns, stored={**stored, "kind": _enum_values(_gather(batch)(apps.kind))})
        ids = _ids_in_order(session, t, above, len(batch))
        if ids is None:
            new_ids: dict[str | None, int] = dict(session.execute(
                select(t.c.uscc, t.c.id).where(t.c.id > above)).all())
            ids = list(map(new_ids.__getitem__, columns["uscc"]))
        apps.institution_id.update(zip(batch, ids, strict=True))
        ids_by_code.update((code, institution_id) for code, institution_id
                           in zip(columns["insurance_code"], ids, strict=True) if code is not None)

    existing = [i for i in todo if i in apps.existing]
    if existing:
        processed, stored = values(existing)
        columns = {**processed, **stored, "kind": [apps.kind[i] for i in existing]}
        params = [{**{k: v[n] for k, v in columns.items()}, "_id": apps.institution_id[i]}
                  for n, i in enumerate(existing)]
        session.execute(
            update(t).where(t.c.id == bindparam("_id")).values({k: bindparam(k) for k in columns}),
            params,
        )


def _ids_in_order(session: Session, t: Table, above: int, n: int) -> list[int] | None:
    """The ids of the `n` rows just inserted into `t` above id `above`, in the order inserted, when the database
    shows them to be ``above + 1 … above + n``; None when it cannot (then the caller reads them back by key).

    SQLite gives each new row the highest rowid plus one (sqlite.org/autoinc.html; only a table at the largest
    rowid or declared AUTOINCREMENT does otherwise), and an import holds the only write transaction: so when
    exactly the ids above+1 … above+n are above `above`, they are the rows in insert order. One aggregate instead
    of reading 100,000 (key, id) pairs back into a dict (~0.1 s of CPU per table). PostgreSQL's COPY takes its
    ids from a sequence other sessions also draw on: read back there.
    """
    if dialect_name(session) != "sqlite" or n == 0:
        return None
    count, low, high = session.execute(
        select(func.count(), func.min(t.c.id), func.max(t.c.id)).where(t.c.id > above)).one()
    if (count, low, high) != (n, above + 1, above + n):
        return None
    return list(range(above + 1, above + n + 1))


def _enum_values(members: Sequence[Enum | None]) -> list[Any]:
    """Each member's value (None stays None), looked up once per distinct member: an enum's ``.value`` is a
    descriptor call, 0.05-0.1 s of CPU per 100,000-row column."""
    value_of = {m: m.value if m is not None else None for m in set(members)}
    return list(map(value_of.__getitem__, members))


def _gather(rows: Sequence[int]) -> Callable[[Sequence[T] | Mapping[int, T]], Sequence[T]]:
    """A function giving a column's values (a list, or a dict by row index) at ``rows``, in their order, gathered
    in C."""
    if len(rows) == 1:
        only = rows[0]
        return lambda values: (values[only],)
    return itemgetter(*rows) if rows else lambda values: ()


def by_district(apps: Applications, todo: Sequence[int]) -> list[int]:
    """The rows grouped by district (districts in order of first appearance, file order within each).

    Inserted so, each district's institutions and applications sit on contiguous pages, and on SQLite
    each district gate's decision rewrites its own pages instead of most of the table (the province's
    forms arrive interleaved; measured at 100k: 13 district decisions 2.6-2.9 s -> 1.2 s; no change seen
    on PostgreSQL). Nothing keys on id order: the audit row keeps the file row number.
    """
    first: dict[str | None, int] = {}
    for i in todo:
        first.setdefault(apps.district[i], len(first))
    return sorted(todo, key=lambda i: first[apps.district[i]])


def write_applications(session: Session, apps: Applications, todo: Sequence[int], program_id: int,
                       import_id: int, now: datetime) -> list[int]:
    """The new applications' ids, in the order of ``todo``."""
    t = table_of(Application)
    if not todo:
        return []
    column = _gather(todo)
    above = _max_id(session, t)
    attempt = apps.attempt
    insert_columns(session, t, {
        "institution_id": column(apps.institution_id),
        "attempt": [attempt.get(i, 1) for i in todo] if attempt else [1] * len(todo),
        "district": column(apps.district),
        "committed_drug_count": column(apps.count),
        "participation_years": column(apps.years),
    }, {"program_id": program_id, "state": ApplicationState.SUBMITTED, "import_id": import_id, "submitted_at": now},
        stored={"price_option": _enum_values([option or PriceOption.AT_WINNING_PRICE
                                              for option in column(apps.price_option)]),
                "findings": [json.dumps([w.finding() for w in apps.warnings[i]]) if i in apps.warnings else "[]"
                             for i in todo]})
    ids = _ids_in_order(session, t, above, len(todo))
    if ids is not None:
        return ids
    # One application per institution per file makes institution_id the key back to the row.
    by_institution: dict[int, int] = dict(session.execute(
        select(t.c.institution_id, t.c.id).where(t.c.id > above, t.c.import_id == import_id)).all())
    return list(map(by_institution.__getitem__, column(apps.institution_id)))


def audit_submissions(session: Session, apps: Applications, todo: Sequence[int], app_ids: Sequence[int],
                      program_id: int, import_id: int, actor: str, now: datetime) -> None:
    """One audit row per new application (what ``APPLICATION`` records for "submit"), in one bulk insert.

    Column-wise with the shared values bound once: 100,000 AuditRecord objects turned back into
    dicts for an executemany cost seconds. The row number stays in ``data``, as the trace from an
    application back to the line of the file it came from.
    """
    if not app_ids:
        return
    numbers, attempt = apps.numbers, apps.attempt
    insert_columns(session, table_of(AuditEvent), {"entity_id": list(map(str, app_ids))}, {
        "program_id": program_id, "entity": "application", "action": "submit", "from_state": None,
        "to_state": ApplicationState.SUBMITTED.value, "actor": actor, "role": Role.SYSTEM, "reason": None, "at": now,
    }, stored={"data": [  # json.dumps of {"import_id": …, "row": …, "attempt": …}: three integers
        f'{{"import_id": {import_id}, "row": {numbers[i]}, "attempt": {attempt.get(i, 1)}}}' for i in todo
    ]})


def enqueue_receipts(session: Session, program: ProgramRow, import_id: int, first_id: int, today: str,
                     now: datetime) -> None:
    """A receipt per new application, written by the database from the rows just inserted."""
    app_t, inst_t = table_of(Application), table_of(Institution)
    enqueue_notices_from(session, select(
        (literal("application_receipt:", String) + sql_cast(app_t.c.id, String)).label("idempotency_key"),
        literal(program.id, Integer).label("program_id"), literal("application_receipt", String).label("kind"),
        literal("institution", String).label("recipient_type"), inst_t.c.id.label("recipient_id"),
        inst_t.c.name.label("recipient_name"), inst_t.c.email.label("email"),
        json_object(session, {  # no program or institution name: render_context has them (issue #17)
            "application_id": app_t.c.id, "district": app_t.c.district, "submitted_on": json_text(session, today),
        }).label("context"),
    ).join(inst_t, inst_t.c.id == app_t.c.institution_id)
     .where(app_t.c.id >= first_id, app_t.c.import_id == import_id).order_by(app_t.c.id), now)


_CONTACT_FIELDS = (("contact_name", "联系人"), ("phone", "联系电话"), ("email", "电子邮箱"))


def update_contacts(session: Session, apps: Applications, program_id: int, import_id: int, actor: str,
                    now: datetime) -> int:
    """A re-sent file corrects the contact of an institution already known (issue #18: a corrected phone was
    kept as the old one, so notices and calls went to the wrong number). Returns how many institutions changed.

    Only the contact columns: name, code and kind are the institution's identity and are not rewritten by an upload.
    The audit row names the changed columns, not their values (no personal data in the trail's summary).
    """
    t = table_of(Institution)
    rows = {apps.institution_id[i]: i for i in sorted(apps.existing) if i in apps.institution_id}
    if not rows:
        return 0
    current = {r.id: r for r in session.execute(
        select(t.c.id, t.c.contact_name, t.c.phone, t.c.email).where(t.c.id.in_(list(rows)))).all()}
    changes: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    for institution_id, i in rows.items():
        old = current.get(institution_id)
        if old is None:
            continue
        new = {"contact_name": apps.contact_name[i], "phone": apps.phone[i], "email": apps.email[i]}
        changed = [label for field, label in _CONTACT_FIELDS if new[field] != getattr(old, field)]
        if not changed:
            continue
        changes.append({"b_id": institution_id, **{f"b_{k}": v for k, v in new.items()}})
        audits.append({"program_id": program_id, "entity": "institution", "entity_id": str(institution_id),
                       "action": "update", "from_state": None, "to_state": None, "actor": actor[:64],
                       "role": Role.SYSTEM, "reason": "重新报送的申请表更正了联系方式", "at": now,
                       "data": {"changed": changed, "import_id": import_id, "row": apps.numbers[i]}})
    if changes:
        session.execute(update(t).where(t.c.id == bindparam("b_id")).values(
            contact_name=bindparam("b_contact_name"), phone=bindparam("b_phone"), email=bindparam("b_email")),
            changes)
        session.execute(table_of(AuditEvent).insert(), audits)
    return len(changes)

"""Computing the public lists and keeping their versions: a new version only when content changes.

A province's institution list is 100,000 rows, so a list is handled as plain tuples: its columns
once, one tuple of strings per key, selected as columns (never ORM entities). Each entry's canonical
JSON is built once and serves three ends: the content hash, the comparison with the previous
version (stored text against new text; only entries whose text differs are parsed), and the stored
row itself. Entries are written with COPY on PostgreSQL and one executemany elsewhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring  # type: ignore[attr-defined]  # the C escaper json.dumps uses
from operator import itemgetter
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Connection,
    Select,
    String,
    Text,
    bindparam,
    cast,
    func,
    insert,
    select,
    text,
    type_coerce,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.base import Executable
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, col

from core.bulk import write_audit
from models.catalog import DeclarationItem, Enterprise, EnterpriseDeclaration, ListEntry, ListVersion, Product
from models.clock import Clock
from models.compliance.codes import SubjectType
from models.enforcement import EnforcementCase, LadderState
from models.enrollment import Application, Batch, Institution
from models.program import Program, User
from models.program_definition import ProgramDefinition
from models.states import (
    CATEGORY_LABELS,
    KIND_LABELS,
    ApplicationState,
    DeclarationState,
    EnterpriseState,
    InstitutionKind,
    ListKind,
    Role,
    category_of,
)
from models.transitions import AuditRecord

ListName = Literal["drugs", "recommended", "institutions"]

DRUG_COLUMNS = ("药品统一编码", "产品名称", "剂型", "规格", "转换比", "最小制剂单位", "最小包装单位", "包装材质",
                "生产企业", "投标企业", "中选价(元)", "批准文号", "类别", "特药")
INSTITUTION_COLUMNS = ("机构医保编码", "单位名称", "所属区县", "机构类别", "机构性质", "单位地址", "联系电话",
                       "批次", "三进标识")
# A suspended institution stays on the list with this mark until it is reinstated or disqualified (000 §四(三)).
SUSPENDED_MARK = "三进（暂停医保结算）"
_SLICE = 5_000  # keys per IN list: PostgreSQL caps a statement's parameters at 65,535
_encode: Callable[[str], str] = encode_basestring


def columns_of(kind: ListKind) -> tuple[str, ...]:
    return INSTITUTION_COLUMNS if kind == ListKind.INSTITUTIONS else DRUG_COLUMNS


class ListRows:
    """One list's content: its columns, and per key a tuple of strings in column order.

    Fixed once made: its order, canonical texts and digest are worked out once and kept.
    """

    __slots__ = ("_canonical", "_digest", "_keys", "_ordered", "columns", "rows")

    def __init__(self, columns: tuple[str, ...], rows: dict[str, tuple[str, ...]]) -> None:
        self.columns = columns
        self.rows = rows
        self._canonical: dict[str, str] | None = None
        self._keys: list[str] | None = None
        self._ordered: list[tuple[str, ...]] | None = None
        self._digest: str | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def entry(self, key: str) -> dict[str, Any]:
        return dict(zip(self.columns, self.rows[key], strict=True))

    def entries(self) -> dict[str, dict[str, Any]]:
        columns = self.columns
        return {key: dict(zip(columns, row, strict=True)) for key, row in self.rows.items()}

    def sorted_keys(self) -> list[str]:
        """The keys in order: the order of the hash, of every file, and of the stored rows."""
        if self._keys is None:
            self._keys = sorted(self.rows)
        return self._keys

    def ordered(self) -> list[tuple[str, ...]]:
        if self._ordered is None:
            rows = self.rows
            self._ordered = [rows[key] for key in self.sorted_keys()]
        return self._ordered

    def canonical(self) -> dict[str, str]:
        """Each entry's JSON as the content hash reads it (keys sorted, compact, UTF-8); also what is stored."""
        if self._canonical is None:
            self._canonical = _canonical_texts(self.columns, self.rows)
        return self._canonical

    def digest(self) -> str:
        """The same digest as content_hash(self.entries()), without a dict per row."""
        if self._digest is not None:
            return self._digest
        canonical = self.canonical()
        digest = hashlib.sha256(b"[")
        keys = self.sorted_keys()
        for start in range(0, len(keys), _SLICE):
            part = ",".join([f"[{_encode(k)},{canonical[k]}]" for k in keys[start:start + _SLICE]])
            digest.update(((',' if start else '') + part).encode())
        digest.update(b"]")
        self._digest = digest.hexdigest()
        return self._digest


def _canonical_texts(columns: tuple[str, ...], rows: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":")), one template per list."""
    order = sorted(range(len(columns)), key=columns.__getitem__)
    template = "{" + ",".join(_encode(columns[i]).replace("%", "%%") + ":%s" for i in order) + "}"
    pick: Callable[[tuple[str, ...]], tuple[str, ...]] = (
        itemgetter(*order) if len(order) > 1 else lambda row: (row[order[0]],))
    out: dict[str, str] = {}
    for key, row in rows.items():
        try:
            out[key] = template % tuple(map(_encode, pick(row)))
        except TypeError:  # a value that is not a string: the general encoder
            out[key] = _dumps(dict(zip(columns, row, strict=False)))
    return out


def _dumps(entry: Mapping[str, Any]) -> str:
    return json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# ---- the lists' content, from the source tables


def drug_rows(session: Session, program_id: int, recommended_only: bool = False) -> ListRows:
    """Products of accepted declarations of active enterprises, keyed by drug code."""
    query = (
        select(col(Product.drug_code), col(Product.name), col(Product.dosage_form), col(Product.spec),
               col(Product.conversion_ratio), col(Product.min_unit), col(Product.package_unit),
               col(Product.package_material), col(Product.manufacturer), col(Product.bidder),
               col(Product.winning_price), col(Product.approval_number), col(Product.category),
               col(Product.is_special))
        .select_from(Product)
        .join(DeclarationItem, col(DeclarationItem.product_id) == Product.id)
        .join(EnterpriseDeclaration, col(EnterpriseDeclaration.id) == DeclarationItem.declaration_id)
        .join(Enterprise, col(Enterprise.id) == Product.enterprise_id)
        .where(col(EnterpriseDeclaration.program_id) == program_id,
               col(EnterpriseDeclaration.state) == DeclarationState.ACCEPTED,
               col(Enterprise.state) == EnterpriseState.ACTIVE)
    )
    if recommended_only:
        query = query.where(col(DeclarationItem.recommended) == True)  # noqa: E712 - SQL comparison
    rows: dict[str, tuple[str, ...]] = {}
    for (code, name, form, spec, ratio, min_unit, package_unit, material, manufacturer, bidder, price, approval,
         category, special) in read_whole_list(session.connection(), query):
        rows[code] = (code, name, form, spec, ratio, min_unit, package_unit, material, manufacturer, bidder,
                      f"{price:.2f}", approval, category or "", "是" if special else "否")
    return ListRows(DRUG_COLUMNS, rows)


_KIND_CELLS = {kind.value: (KIND_LABELS[kind], CATEGORY_LABELS[category_of(kind)]) for kind in InstitutionKind}


def institution_list_query(program_id: int) -> Executable:
    """The running (and suspended) institutions of the program with their batch: the institution list's source."""
    return (
        select(col(Institution.insurance_code), col(Institution.name), col(Institution.district),
               type_coerce(col(Institution.kind), String),  # the stored value: no enum per row
               col(Institution.address), col(Institution.phone), col(Batch.number),
               type_coerce(col(Application.state), String))
        .select_from(Application)
        .join(Institution, col(Institution.id) == Application.institution_id)
        .join(Batch, col(Batch.id) == Application.batch_id)
        .where(col(Application.program_id) == program_id,
               col(Application.state).in_([ApplicationState.RUNNING, ApplicationState.SUSPENDED]),
               col(Institution.id).notin_(sign_removed_query(program_id))))


def sign_removed_query(program_id: int) -> Select[Any]:
    """Institutions whose 三进 sign is removed (摘除标识牌, 001 §三(四)): they run on but are not publicly listed."""
    return select(col(EnforcementCase.subject_id)).where(
        col(EnforcementCase.program_id) == program_id, col(EnforcementCase.subject_type) == SubjectType.INSTITUTION,
        col(EnforcementCase.state) == LadderState.SIGN_REMOVED)


def institution_rows(session: Session, program_id: int) -> ListRows:
    """Running institutions of the program, keyed by their insurance code (published by batch)."""
    result = read_whole_list(session.connection(), institution_list_query(program_id))
    rows: dict[str, tuple[str, ...]] = {}
    cells = _KIND_CELLS
    suspended = ApplicationState.SUSPENDED.value  # an enum's .value is a Python-level property: once, not per row
    for code, name, district, kind, address, phone, batch_no, state in result:
        kind_label, category = cells[kind]
        mark = SUSPENDED_MARK if state == suspended else "三进"
        rows[code] = (code, name, district, kind_label, category, address, phone, f"第{batch_no}批", mark)
    return ListRows(INSTITUTION_COLUMNS, rows)


def read_whole_list(connection: Connection, query: Executable) -> Sequence[Any]:
    """All rows of a join that reads whole tables, with hash joins on PostgreSQL whatever its statistics say.

    Right after a bulk import the planner may still hold statistics of near-empty tables and pick a
    nested loop over a sequential scan: 100,000 × 100,000 row visits (seen here: a list query that
    ran for 15 minutes instead of 0.3 s). A whole list is always best joined by hashing, so nested
    loops are switched off for this one statement and the setting is put back after it.
    """
    rows: Sequence[Any]
    if connection.dialect.name != "postgresql":
        rows = connection.execute(query).all()
        return rows
    before = connection.exec_driver_sql("SELECT current_setting('enable_nestloop')").scalar_one()
    connection.exec_driver_sql("SET LOCAL enable_nestloop = off")
    rows = connection.execute(query).all()
    connection.execute(text("SELECT set_config('enable_nestloop', :value, true)"), {"value": before})
    return rows


def compute_rows(session: Session, program_id: int, kind: ListKind) -> ListRows:
    if kind == ListKind.INSTITUTIONS:
        return institution_rows(session, program_id)
    return drug_rows(session, program_id, recommended_only=kind == ListKind.RECOMMENDED)


def drug_entries(session: Session, program_id: int, recommended_only: bool = False) -> dict[str, dict[str, Any]]:
    return drug_rows(session, program_id, recommended_only).entries()


def institution_entries(session: Session, program_id: int) -> dict[str, dict[str, Any]]:
    return institution_rows(session, program_id).entries()


def compute_entries(session: Session, program_id: int, kind: ListKind) -> dict[str, dict[str, Any]]:
    return compute_rows(session, program_id, kind).entries()


def content_hash(entries: Mapping[str, Mapping[str, Any]]) -> str:
    """The digest a version's content is known by (and a drug-list gate's key is made of): never change it."""
    blob = json.dumps(sorted(entries.items()), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def diff_entries(old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Keys added, removed and changed from `old` to `new`, each sorted."""
    return {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "changed": sorted(k for k in new.keys() & old.keys() if new[k] != old[k]),
    }


def diff_rows(old_texts: Mapping[str, str], new: ListRows) -> dict[str, list[str]]:
    """diff_entries(old, new.entries()) from the stored texts: an entry is parsed only if its text differs.

    Text equal means content equal. Text different usually means content different, but not always
    (a version stored by an older serialiser): those are parsed and compared as the content they are.
    """
    texts, get = new.canonical(), old_texts.get
    differ = [k for k, text in texts.items() if get(k) != text]  # added, or stored otherwise
    kept = [k for k in differ if k in old_texts]
    olds = _parse(old_texts[k] for k in kept)
    return {
        "added": sorted(k for k in differ if k not in old_texts),
        "removed": sorted(old_texts.keys() - texts.keys()),
        "changed": sorted(k for k, old in zip(kept, olds, strict=True) if old != new.entry(k)),
    }


def _parse(texts: Iterator[str] | Sequence[str]) -> list[dict[str, Any]]:
    """Many stored entries in one parse (one JSON array) rather than a parse call per entry."""
    parsed: list[dict[str, Any]] = json.loads("[" + ",".join(texts) + "]")
    return parsed


# ---- versions and their stored entries


def latest_version(session: Session, program_id: int, kind: ListKind) -> ListVersion | None:
    return session.scalars(
        select(ListVersion).where(col(ListVersion.program_id) == program_id, col(ListVersion.kind) == kind)
        .order_by(col(ListVersion.number).desc())
    ).first()


def stored_texts(session: Session, version_id: int, keys: Collection[str] | None = None) -> dict[str, str]:
    """A version's entries as their stored JSON text, all of them or those of `keys`."""
    query = (select(col(ListEntry.key), cast(col(ListEntry.data), Text))
             .where(col(ListEntry.version_id) == version_id))
    connection = session.connection()
    if keys is None or len(keys) > 4 * _SLICE:  # many keys: one scan is cheaper than many IN lists
        wanted = None if keys is None else set(keys)
        rows = connection.execute(query).all()
        return dict(rows) if wanted is None else {k: t for k, t in rows if k in wanted}  # type: ignore[arg-type]
    ordered = sorted(keys)
    out: dict[str, str] = {}
    for start in range(0, len(ordered), _SLICE):
        for key, stored in connection.execute(query.where(col(ListEntry.key).in_(ordered[start:start + _SLICE]))):
            out[key] = stored
    return out


def stored_entries(session: Session, version_id: int, keys: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
    texts = stored_texts(session, version_id, keys)
    return dict(zip(texts, _parse(list(texts.values())), strict=True))


def version_entries(session: Session, version_id: int) -> dict[str, dict[str, Any]]:
    return stored_entries(session, version_id)


def version_rows(session: Session, version_id: int, columns: tuple[str, ...]) -> ListRows:
    """A stored version as rows of strings, as its files show it (a missing or empty value shows as "")."""
    rows: dict[str, tuple[str, ...]] = {}
    for key, data in stored_entries(session, version_id).items():
        try:
            row = tuple(map(data.__getitem__, columns))
            "".join(row)  # every value a string
        except (KeyError, TypeError):
            row = tuple("" if data.get(c) is None else str(data.get(c)) for c in columns)
        rows[key] = row
    return ListRows(columns, rows)


class _StoredJSON(TypeDecorator[str]):
    """JSON already serialised (the canonical text) into a JSON column, as it is: not serialised again."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:  # type: ignore[override]
        return None


_INSERT_ENTRIES = insert(ListEntry.__table__).values(  # type: ignore[attr-defined]
    version_id=bindparam("v"), key=bindparam("k"), data=bindparam("d", type_=_StoredJSON()))


def _insert_entries(connection: Connection, version_id: int, texts: Mapping[str, str], keys: Sequence[str]) -> None:
    """COPY on PostgreSQL (≈10× an INSERT of 1,000-row pages there); on SQLite the driver's executemany
    of plain tuples (a Core insert spends ≈5× as long turning 100,000 dicts into parameters)."""
    dialect = connection.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {ListEntry.__tablename__} (version_id, key, data) FROM STDIN") as copy:
            for key in keys:
                copy.write_row((version_id, key, texts[key]))
    elif dialect.name == "sqlite" and dialect.paramstyle == "qmark":
        connection.exec_driver_sql(f"INSERT INTO {ListEntry.__tablename__} (version_id, key, data) VALUES (?, ?, ?)",
                                   [(version_id, k, texts[k]) for k in keys])
    else:
        insert_entries_portably(connection, version_id, texts, keys)


def insert_entries_portably(connection: Connection, version_id: int, texts: Mapping[str, str],
                            keys: Sequence[str]) -> None:
    """Any other database: a Core insert of the texts as they are (not serialised again)."""
    connection.execute(_INSERT_ENTRIES, [{"v": version_id, "k": k, "d": texts[k]} for k in keys])


@dataclass(frozen=True)
class PublishedVersion:
    """A version just written, with what its files need: its rows and the previous entries it removed or changed."""

    version: ListVersion
    rows: ListRows
    previous: dict[str, dict[str, Any]]


def publish_rows(
    session: Session,
    program: Program,
    defn: ProgramDefinition,
    kind: ListKind,
    *,
    clock: Clock,
    actor: str = "system",
    reason: str | None = None,
    rows: ListRows | None = None,
) -> PublishedVersion | None:
    """Write a new version if the list changed since the latest one; None when unchanged.

    `rows` is the list's content when the caller computed it in this transaction already.
    Publishing the drug list also publishes the recommended list where the program has one.
    """
    assert program.id is not None
    if kind == ListKind.DRUGS and defn.rules.has_recommended_list:
        publish_rows(session, program, defn, ListKind.RECOMMENDED, clock=clock, actor=actor, reason=reason)
    rows = compute_rows(session, program.id, kind) if rows is None else rows
    digest = rows.digest()
    latest = latest_version(session, program.id, kind)
    if (latest is not None and latest.content_hash == digest) or (latest is None and not rows):
        return None  # unchanged, or nothing to publish yet
    old_texts = stored_texts(session, latest.id) if latest is not None and latest.id is not None else {}
    diff = diff_rows(old_texts, rows)
    previous = {k: old_texts[k] for k in (*diff["removed"], *diff["changed"])}
    del old_texts
    number = (session.scalar(select(func.max(ListVersion.number)).where(
        col(ListVersion.program_id) == program.id, col(ListVersion.kind) == kind)) or 0) + 1
    version = ListVersion(program_id=program.id, kind=kind, number=number, content_hash=digest,
                          entry_count=len(rows), added=len(diff["added"]), removed=len(diff["removed"]),
                          changed=len(diff["changed"]), diff=diff, reason=reason, published_at=clock.now(),
                          published_by=actor)
    session.add(version)
    session.flush()
    assert version.id is not None
    write_audit(session, [AuditRecord(
        entity="list_version", entity_id=version.id, action="publish", from_state=None, to_state=kind.value,
        actor=actor, role=session.execute(select(col(User.role)).where(col(User.name) == actor)).scalar() or Role.SYSTEM,
        at=clock.now(), reason=reason, program_id=program.id,
        data={"number": number, "entries": len(rows), "added": len(diff["added"]), "removed": len(diff["removed"]),
              "changed": len(diff["changed"]), "content_hash": digest})])
    if rows:
        # In key order: the unique (version, key) index then grows at its end.
        _insert_entries(session.connection(), version.id, rows.canonical(), rows.sorted_keys())
    return PublishedVersion(version, rows, dict(zip(previous, _parse(list(previous.values())), strict=True)))


def publish_list(
    session: Session,
    program: Program,
    defn: ProgramDefinition,
    kind: ListName | ListKind,
    *,
    clock: Clock,
    actor: str = "system",
    reason: str | None = None,
) -> ListVersion | None:
    """Write a new version if the list changed since the latest one; None when unchanged.

    Publishing the drug list also publishes the recommended list where the program has one.
    """
    published = publish_rows(session, program, defn, ListKind(kind), clock=clock, actor=actor, reason=reason)
    return None if published is None else published.version

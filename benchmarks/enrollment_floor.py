"""Figure 1's floor (issue #17): a plain script doing the same I/O as enrollment, with none of the product.

What LIMITS.md calls the enrollment floor: read the applications XLSX with python-calamine, validate every row
with pydantic (the USCC's check character included), insert institutions and applications with SQLAlchemy Core
`insert()` + executemany, apply three bulk state transitions (district approval, city approval, running), each
with an audit row per application written by `INSERT … SELECT`, and write an outbox row per application. No
Prefect, no gates, no lists, no accounts, no audit chain: what any program doing this I/O pays. Run in the same
process and the same database kind as figure 1, on the same file, so load affects both.

That floor writes less than figure 1 does: no gates, no reviews, no list, no accounts, one notice set of three, three
transitions of four, no audit row for the submissions. `run_same_io_floor` is a second floor that writes every row
figure 1 writes (the table in benchmarks/README.md, "Figure 1's two floors"), still with plain SQLAlchemy Core and no
product code: the issue's "a plain script doing the same I/O" read row for row. Both are printed, each with its
ratio; the first stays LIMITS.md's floor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    literal,
    select,
    update,
)

from benchmarks.cpu import CpuMeter
from models.validators import validate_uscc

META = MetaData()
INSTITUTION = Table(
    "f_institution", META, Column("id", Integer, primary_key=True), Column("name", String(200), unique=True),
    Column("address", String(300)), Column("uscc", String(18), unique=True), Column("legal_rep", String(64)),
    Column("insurance_code", String(32), unique=True), Column("contact_name", String(64)),
    Column("phone", String(32)), Column("email", String(200)), Column("district", String(32)),
    Column("kind", String(32)))
APPLICATION = Table(
    "f_application", META, Column("id", Integer, primary_key=True),
    Column("institution_id", Integer, ForeignKey("f_institution.id")), Column("district", String(32)),
    Column("state", String(32), index=True), Column("committed_drug_count", Integer),
    Column("participation_years", Integer), Column("submitted_at", DateTime(timezone=True)))
AUDIT = Table(
    "f_audit", META, Column("id", Integer, primary_key=True), Column("entity_id", String(64)),
    Column("action", String(48)), Column("from_state", String(40)), Column("to_state", String(40)),
    Column("actor", String(64)), Column("at", DateTime(timezone=True)), Column("data", JSON))
NOTICE = Table(
    "f_notice", META, Column("id", Integer, primary_key=True), Column("idempotency_key", String(128), unique=True),
    Column("recipient_id", Integer), Column("recipient_name", String(200)), Column("email", String(200)),
    Column("context", Text), Column("status", String(16)))


# The same-I/O floor's own schema (`run_same_io_floor`): the floor's four tables again (the applications with their
# batch), and the rows figure 1 writes that the floor does not. Created only by that floor, so the first floor's
# tables stay as they were.
SAME_IO = MetaData()
S_INSTITUTION = INSTITUTION.to_metadata(SAME_IO, name="s_institution")
S_APPLICATION = Table(
    "s_application", SAME_IO, Column("id", Integer, primary_key=True),
    Column("institution_id", Integer, ForeignKey("s_institution.id")), Column("district", String(32)),
    Column("state", String(32), index=True), Column("batch_id", Integer), Column("committed_drug_count", Integer),
    Column("participation_years", Integer), Column("submitted_at", DateTime(timezone=True)))
S_AUDIT = AUDIT.to_metadata(SAME_IO, name="s_audit")
S_NOTICE = NOTICE.to_metadata(SAME_IO, name="s_notice")
BATCH = Table("f_batch", SAME_IO, Column("id", Integer, primary_key=True), Column("number", Integer),
              Column("state", String(32)), Column("list_version_id", Integer))
GATE = Table(
    "f_gate", SAME_IO, Column("id", Integer, primary_key=True), Column("kind", String(40)),
    Column("district", String(32)), Column("items", JSON), Column("state", String(32)), Column("decision", JSON))
REVIEW = Table(
    "f_review", SAME_IO, Column("id", Integer, primary_key=True), Column("application_id", Integer),
    Column("level", String(40)), Column("decision", String(40)), Column("reviewer", String(64)),
    Column("decided_at", DateTime(timezone=True)))
ACCOUNT = Table(
    "f_account", SAME_IO, Column("id", Integer, primary_key=True), Column("institution_id", Integer, unique=True),
    Column("state", String(40)), Column("due_on", Date))
LIST_VERSION = Table(
    "f_list_version", SAME_IO, Column("id", Integer, primary_key=True), Column("number", Integer),
    Column("entry_count", Integer), Column("published_at", DateTime(timezone=True)))
LIST_ENTRY = Table(
    "f_list_entry", SAME_IO, Column("id", Integer, primary_key=True), Column("version_id", Integer),
    Column("key", String(64)), Column("data", Text), UniqueConstraint("version_id", "key"))


class Row(BaseModel):
    """One application as the product's template has it; the USCC must pass its GB 32100 check character."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str
    address: str
    uscc: str
    legal_rep: str
    insurance_code: str
    contact_name: str
    phone: str
    email: str | None
    district: str
    kind: str
    committed_drug_count: int
    participation_years: int

    @field_validator("uscc")
    @classmethod
    def _uscc(cls, value: str) -> str:
        return validate_uscc(value)


FIELDS = {"单位名称": "name", "单位地址": "address", "统一社会信用代码": "uscc", "法人代表": "legal_rep",
          "机构医保编码": "insurance_code", "联系人": "contact_name", "联系电话": "phone", "电子邮箱": "email",
          "所属区县": "district", "机构类别": "kind", "承诺配备药品数量": "committed_drug_count",
          "承诺参加年限": "participation_years"}
TRANSITIONS = (("submitted", "district_approved", "district_approve"), ("district_approved", "approved", "city_approve"),
               ("approved", "running", "run"))


def _stages() -> tuple[dict[str, float], dict[str, float], Callable[[str], AbstractContextManager[None]]]:
    """Each stage's wall and CPU seconds (its commit included, as the product's stages)."""
    stages: dict[str, float] = {}
    cpu_stages: dict[str, float] = {}

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        meter = CpuMeter().start()
        start = time.perf_counter()
        yield
        stages[name] = round(time.perf_counter() - start, 3)
        cpu_stages[name] = round(meter.stop().total, 3)

    return stages, cpu_stages, stage


def _read(xlsx: Path) -> tuple[list[list[Any]], list[tuple[int, str]]]:
    from python_calamine import CalamineWorkbook

    sheet: list[list[Any]] = CalamineWorkbook.from_path(str(xlsx)).get_sheet_by_index(0).to_python()
    header = [str(h) for h in sheet[0]]
    return sheet, [(header.index(label), field) for label, field in FIELDS.items()]


def _validate(sheet: list[list[Any]], wanted: list[tuple[int, str]]) -> list[Row]:
    return [Row(**{field: (str(r[i]) if r[i] != "" else None) if field == "email" else str(r[i])
                   for i, field in wanted}) for r in sheet[1:]]


def _insert(conn: Connection, rows: list[Row], now: datetime, institution: Table = INSTITUTION,
            application: Table = APPLICATION) -> None:
    conn.execute(insert(institution), [r.model_dump(exclude={"committed_drug_count", "participation_years"})
                                       for r in rows])
    ids = dict(conn.execute(select(institution.c.insurance_code, institution.c.id)).tuples().all())
    conn.execute(insert(application), [
        {"institution_id": ids[r.insurance_code], "district": r.district, "state": "submitted",
         "committed_drug_count": r.committed_drug_count, "participation_years": r.participation_years,
         "submitted_at": now} for r in rows])


def run_floor(engine: Engine, xlsx: Path) -> dict[str, Any]:
    """Time each stage of the plain script against `engine` (an empty database); rows counted at the end.

    A stage's time includes its commit, as the product's stages do.
    """
    import python_calamine  # noqa: F401 - imported before the clock starts, as it always was

    stages, cpu_stages, stage = _stages()
    META.create_all(engine)
    now = datetime.now(UTC)
    with stage("read (calamine)"):
        sheet, wanted = _read(xlsx)
    with stage("validate (pydantic, USCC check)"):
        rows = _validate(sheet, wanted)
    with stage("insert (Core executemany)"), engine.begin() as conn:
        _insert(conn, rows, now)
    for from_state, to_state, action in TRANSITIONS:
        with stage(f"transition {action} + audit"), engine.begin() as conn:
            conn.execute(insert(AUDIT).from_select(
                ["entity_id", "action", "from_state", "to_state", "actor", "at", "data"],
                select(func.cast(APPLICATION.c.id, String), literal(action), literal(from_state), literal(to_state),
                       literal("benchmark"), literal(now, DateTime(timezone=True)), literal({"batch": 1}, JSON))
                .where(APPLICATION.c.state == from_state)))
            conn.execute(update(APPLICATION).where(APPLICATION.c.state == from_state).values(state=to_state))
    with stage("outbox rows (INSERT … SELECT)"), engine.begin() as conn:
        conn.execute(insert(NOTICE).from_select(
            ["idempotency_key", "recipient_id", "recipient_name", "email", "context", "status"],
            select(literal("welcome:") + func.cast(INSTITUTION.c.id, String), INSTITUTION.c.id, INSTITUTION.c.name,
                   INSTITUTION.c.email, INSTITUTION.c.address, literal("pending")).where(INSTITUTION.c.id > 0)))
    with engine.connect() as conn:
        counts = {"applications_running": conn.execute(select(func.count()).select_from(APPLICATION)
                                                       .where(APPLICATION.c.state == "running")).scalar_one(),
                  "audit_rows": conn.execute(select(func.count()).select_from(AUDIT)).scalar_one(),
                  "notices": conn.execute(select(func.count()).select_from(NOTICE)).scalar_one()}
    n = len(rows)
    counts["ok"] = counts == {"applications_running": n, "audit_rows": 3 * n, "notices": n}
    return {"what": __doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else "",
            "seconds": round(sum(stages.values()), 3), "stages": stages,
            "cpu_seconds": round(sum(cpu_stages.values()), 3), "cpu_stages": cpu_stages, "counts": counts}


def _audit(conn: Connection, action: str, from_state: str, to_state: str, now: datetime) -> None:
    conn.execute(insert(S_AUDIT).from_select(
        ["entity_id", "action", "from_state", "to_state", "actor", "at", "data"],
        select(func.cast(S_APPLICATION.c.id, String), literal(action), literal(from_state), literal(to_state),
               literal("benchmark"), literal(now, DateTime(timezone=True)), literal({"batch": 1}, JSON))
        .where(S_APPLICATION.c.state == from_state)))


def _notices(conn: Connection, kind: str, now: datetime, *where: Any) -> None:
    """One notice per institution (of the applications in `where`), its context a JSON object the database builds."""
    build = func.json_build_object if conn.dialect.name == "postgresql" else func.json_object
    conn.execute(insert(S_NOTICE).from_select(
        ["idempotency_key", "recipient_id", "recipient_name", "email", "context", "status"],
        select(literal(f"{kind}:") + func.cast(S_INSTITUTION.c.id, String), S_INSTITUTION.c.id, S_INSTITUTION.c.name,
               S_INSTITUTION.c.email,
               func.cast(build("institution_name", S_INSTITUTION.c.name, "application_id", S_APPLICATION.c.id,
                               "district", S_APPLICATION.c.district, "at", literal(now.isoformat())), Text),
               literal("pending"))
        .join(S_APPLICATION, S_APPLICATION.c.institution_id == S_INSTITUTION.c.id).where(*where)))


def _review(conn: Connection, level: str, from_state: str, to_state: str, action: str, now: datetime) -> None:
    """A level's decision on every application in `from_state`: a review row and an audit row each, the move."""
    conn.execute(insert(REVIEW).from_select(
        ["application_id", "level", "decision", "reviewer", "decided_at"],
        select(S_APPLICATION.c.id, literal(level), literal("approve"), literal("benchmark"),
               literal(now, DateTime(timezone=True))).where(S_APPLICATION.c.state == from_state)))
    _audit(conn, action, from_state, to_state, now)


def _decide_gates(conn: Connection, kind: str, now: datetime) -> None:
    """Every open gate of `kind` decided: its document names each item approved."""
    for gate_id, items in conn.execute(select(GATE.c.id, GATE.c["items"]).where(GATE.c.kind == kind,
                                                                             GATE.c.state == "open")).all():
        conn.execute(update(GATE).where(GATE.c.id == gate_id).values(state="decided", decision={"outcomes": [
            {"decision": "approve", "by": "benchmark", "at": now.isoformat(), "items": items}]}))


def run_same_io_floor(engine: Engine, xlsx: Path) -> dict[str, Any]:
    """Every row figure 1 writes, with plain SQLAlchemy Core, in figure 1's order; rows counted at the end.

    Beyond `run_floor`: the submissions' audit rows and receipts (import), the batch and its assignment, 13 district
    gates and the city gate with their items and decision documents, 200,000 reviews with their audit rows, the
    decisions' notices, the accounts, the published notices and the institution list (100,000 entries as JSON
    text, built by `json.dumps` from one join). Not written here either: the audit chain's hashes (the seal, issue
    #18), the product's extra columns and secondary indexes, and no Prefect. A stage's time includes its commit.
    """
    import python_calamine  # noqa: F401 - imported before the clock starts

    stages, cpu_stages, stage = _stages()
    SAME_IO.create_all(engine)
    now = datetime.now(UTC)
    with stage("read (calamine)"):
        sheet, wanted = _read(xlsx)
    with stage("validate (pydantic, USCC check)"):
        rows = _validate(sheet, wanted)
    with stage("import: insert, submissions' audit rows, receipts"), engine.begin() as conn:
        _insert(conn, rows, now, S_INSTITUTION, S_APPLICATION)
        conn.execute(insert(S_AUDIT).from_select(
            ["entity_id", "action", "from_state", "to_state", "actor", "at", "data"],
            select(func.cast(S_APPLICATION.c.id, String), literal("submit"), literal(None, String),
                   literal("submitted"), literal("benchmark"), literal(now, DateTime(timezone=True)),
                   literal({"import": 1}, JSON))))
        _notices(conn, "receipt", now, S_APPLICATION.c.state == "submitted")
    with stage("batch: assign"), engine.begin() as conn:
        batch = conn.execute(insert(BATCH).values(number=1, state="open")).inserted_primary_key[0]  # type: ignore[index]
        conn.execute(update(S_APPLICATION).where(S_APPLICATION.c.batch_id.is_(None)).values(batch_id=batch))
    with stage("batch: declare, district gates"), engine.begin() as conn:
        conn.execute(update(BATCH).where(BATCH.c.id == batch).values(state="declared"))
        by_district: dict[str, list[int]] = {}
        for district, app_id in conn.execute(select(S_APPLICATION.c.district, S_APPLICATION.c.id)
                                             .where(S_APPLICATION.c.batch_id == batch).order_by(S_APPLICATION.c.id)):
            by_district.setdefault(district, []).append(app_id)
        conn.execute(insert(GATE), [{"kind": "district", "district": d, "items": ids, "state": "open",
                                     "decision": {"outcomes": []}} for d, ids in sorted(by_district.items())])
    with stage("district review"), engine.begin() as conn:
        _review(conn, "district", "submitted", "district_approved", "district_approve", now)
        conn.execute(update(S_APPLICATION).where(S_APPLICATION.c.state == "submitted").values(state="district_approved"))
        _decide_gates(conn, "district", now)
    with stage("city gate"), engine.begin() as conn:
        ids = list(conn.execute(select(S_APPLICATION.c.id).where(S_APPLICATION.c.state == "district_approved")
                                .order_by(S_APPLICATION.c.id)).scalars())
        conn.execute(insert(GATE).values(kind="city", items=ids, state="open", decision={"outcomes": []}))
    with stage("city review"), engine.begin() as conn:
        _review(conn, "city", "district_approved", "approved", "city_approve", now)
        _notices(conn, "decision", now, S_APPLICATION.c.state == "district_approved")
        conn.execute(update(S_APPLICATION).where(S_APPLICATION.c.state == "district_approved").values(state="approved"))
        _decide_gates(conn, "city", now)
    with stage("batch runs, accounts, notices, the list"), engine.begin() as conn:
        _audit(conn, "run", "approved", "running", now)
        conn.execute(insert(ACCOUNT).from_select(
            ["institution_id", "state", "due_on"],
            select(S_APPLICATION.c.institution_id, literal("pending"), literal(now.date(), Date()))
            .where(S_APPLICATION.c.state == "approved")))
        _notices(conn, "published", now, S_APPLICATION.c.state == "approved")
        conn.execute(update(S_APPLICATION).where(S_APPLICATION.c.state == "approved").values(state="running"))
        entries = conn.execute(
            select(S_INSTITUTION.c.insurance_code, S_INSTITUTION.c.name, S_INSTITUTION.c.district, S_INSTITUTION.c.kind,
                   S_INSTITUTION.c.address, S_INSTITUTION.c.phone, BATCH.c.number)
            .join(S_APPLICATION, S_APPLICATION.c.institution_id == S_INSTITUTION.c.id)
            .join(BATCH, BATCH.c.id == S_APPLICATION.c.batch_id)
            .where(S_APPLICATION.c.state == "running").order_by(S_INSTITUTION.c.insurance_code)).all()
        version = conn.execute(insert(LIST_VERSION).values(number=1, entry_count=len(entries), published_at=now)
                               ).inserted_primary_key[0]  # type: ignore[index]
        conn.execute(insert(LIST_ENTRY), [
            {"version_id": version, "key": code, "data": json.dumps(
                {"机构医保编码": code, "单位名称": name, "所属区县": district, "机构类别": kind, "单位地址": address,
                 "联系电话": phone, "批次": f"第{number}批", "三进标识": "三进"}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))}
            for code, name, district, kind, address, phone, number in entries])
        conn.execute(update(BATCH).where(BATCH.c.id == batch).values(state="running", list_version_id=version))
    with engine.connect() as conn:
        def count(table: Table) -> int:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

        counts = {"applications_running": int(conn.execute(select(func.count()).select_from(S_APPLICATION).where(
                      S_APPLICATION.c.state == "running")).scalar_one()),
                  "audit_rows": count(S_AUDIT), "notices": count(S_NOTICE), "reviews": count(REVIEW),
                  "accounts": count(ACCOUNT), "list_entries": count(LIST_ENTRY), "gates": count(GATE)}
    n = len(rows)
    counts["ok"] = counts == {"applications_running": n, "audit_rows": 4 * n, "notices": 3 * n, "reviews": 2 * n,
                              "accounts": n, "list_entries": n, "gates": len(by_district) + 1}
    return {"what": (run_same_io_floor.__doc__ or "").split("\n\n")[1].replace("\n   ", "").replace("\n", " "),
            "seconds": round(sum(stages.values()), 3), "stages": stages,
            "cpu_seconds": round(sum(cpu_stages.values()), 3), "cpu_stages": cpu_stages, "counts": counts}


__all__ = ["run_floor", "run_same_io_floor"]

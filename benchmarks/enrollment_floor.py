"""Figure 1's floor (issue #17): a plain script doing the same I/O as enrollment, with none of the product.

What LIMITS.md calls the enrollment floor: read the applications XLSX with python-calamine, validate every row
with pydantic (the USCC's check character included), insert institutions and applications with SQLAlchemy Core
`insert()` + executemany, apply three bulk state transitions (district approval, city approval, running), each
with an audit row per application written by `INSERT … SELECT`, and write an outbox row per application. No
Prefect, no gates, no lists, no accounts, no audit chain: what any program doing this I/O pays. Run in the same
process and the same database kind as figure 1, on the same file, so load affects both.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
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


def run_floor(engine: Engine, xlsx: Path) -> dict[str, Any]:
    """Time each stage of the plain script against `engine` (an empty database); rows counted at the end.

    A stage's time includes its commit, as the product's stages do.
    """
    from python_calamine import CalamineWorkbook

    stages: dict[str, float] = {}
    cpu_stages: dict[str, float] = {}

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        meter = CpuMeter().start()
        start = time.perf_counter()
        yield
        stages[name] = round(time.perf_counter() - start, 3)
        cpu_stages[name] = round(meter.stop().total, 3)

    META.create_all(engine)
    now = datetime.now(UTC)
    with stage("read (calamine)"):
        sheet = CalamineWorkbook.from_path(str(xlsx)).get_sheet_by_index(0).to_python()
        header = [str(h) for h in sheet[0]]
        wanted = [(header.index(label), field) for label, field in FIELDS.items()]
    with stage("validate (pydantic, USCC check)"):
        rows = [Row(**{field: (str(r[i]) if r[i] != "" else None) if field == "email" else str(r[i])
                       for i, field in wanted}) for r in sheet[1:]]
    with stage("insert (Core executemany)"), engine.begin() as conn:
        conn.execute(insert(INSTITUTION), [r.model_dump(exclude={"committed_drug_count", "participation_years"})
                                           for r in rows])
        ids = dict(conn.execute(select(INSTITUTION.c.insurance_code, INSTITUTION.c.id)).tuples().all())
        conn.execute(insert(APPLICATION), [
            {"institution_id": ids[r.insurance_code], "district": r.district, "state": "submitted",
             "committed_drug_count": r.committed_drug_count, "participation_years": r.participation_years,
             "submitted_at": now} for r in rows])
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


__all__ = ["run_floor"]

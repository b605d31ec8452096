"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL.

Each test gets an empty database: a new SQLite file, or a new PostgreSQL schema reached through
`options=-csearch_path=<schema>` in the URL (how tests/conftest.py isolates its schema). The URL
form matters: it is percent-encoded, and Alembic's configparser once refused such URLs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, Integer, MetaData, inspect, text
from sqlalchemy.exc import IntegrityError

from core.db import make_engine
from core.migrate import alembic_config, current_revision, upgrade
from models.tables import metadata
from tests.conftest import fresh_pg_schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """An engine on a database with no tables at all."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'migrate.db'}")
        yield engine
        engine.dispose()
        return
    with fresh_pg_schema("m") as engine:
        yield engine


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def schema_differences(engine: Engine, target: MetaData) -> list[object]:
    """What autogenerate would write to make the database match `target`; empty when they agree.

    compare_type is on and reports nothing: AwareDateTime and EnumString compare as their impl types
    (DateTime(timezone=True), String(40)), which is what migrations store (deploy/migrations/env.py
    render_item). Should a TypeDecorator ever make compare_type noisy, ignore only that column's type
    here and say so — never the whole comparison.
    """
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(context, target))


def test_an_empty_database_has_no_revision(empty_engine):
    assert current_revision(empty_engine) is None
    assert inspect(empty_engine).get_table_names() == []


def test_upgrade_brings_an_empty_database_to_head(empty_engine):
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    assert set(inspect(empty_engine).get_table_names()) == set(metadata.tables) | {"alembic_version"}


def test_upgrading_twice_changes_nothing(empty_engine):
    upgrade(empty_engine)
    before = {name: [c["name"] for c in inspect(empty_engine).get_columns(name)]
              for name in inspect(empty_engine).get_table_names()}
    upgrade(empty_engine)
    after = {name: [c["name"] for c in inspect(empty_engine).get_columns(name)]
             for name in inspect(empty_engine).get_table_names()}
    assert current_revision(empty_engine) == head_revision()
    assert after == before
    with empty_engine.connect() as conn:
        assert conn.execute(text("select count(*) from alembic_version")).scalar_one() == 1


def test_the_migrated_schema_is_exactly_the_models_schema(empty_engine):
    upgrade(empty_engine)
    assert schema_differences(empty_engine, metadata) == []


def test_the_schema_comparison_does_see_a_column_the_migrations_lack(empty_engine):
    upgrade(empty_engine)
    extended = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(extended)
    extended.tables["batch"].append_column(Column("not_migrated", Integer, nullable=True))
    diffs = schema_differences(empty_engine, extended)
    assert [(d[0], d[3].name) for d in diffs if isinstance(d, tuple)] == [("add_column", "not_migrated")]
    assert len(diffs) == 1


def test_the_alembic_config_accepts_a_percent_encoded_url(empty_engine):
    url = empty_engine.url.render_as_string(hide_password=False)
    assert alembic_config(empty_engine).get_main_option("sqlalchemy.url") == url


def test_a_gates_item_by_item_decisions_become_one_entry_per_outcome_and_back(empty_engine):
    """Migration 0029 regroups `gate.decision` (same facts), and its downgrade spreads them back."""
    from alembic import command
    from sqlmodel import Session

    from models.enrollment import Gate
    from models.states import GateKind, Role
    from tests.factories import make_program

    upgrade(empty_engine)
    program = make_program(empty_engine)
    at = "2025-09-22T10:00:00+08:00"
    old = {"items": {str(i): {"decision": "approve", "reason": None, "by": "manager", "at": at} for i in (3, 1, 2)}
           | {"4": {"decision": "reject", "reason": "材料不全", "by": "manager", "at": at}}}
    with Session(empty_engine) as session:
        gate = Gate(natural_key="g", program_id=program.id, phase="enrollment", kind=GateKind.CITY_REVIEW, title="g",
                    subject_type="batch", items=[1, 2, 3, 4], decider_role=Role.PROGRAM_MANAGER,
                    opened_at=datetime(2025, 9, 22, tzinfo=UTC), due_on=date(2025, 9, 30), decision=old)
        empty = Gate(natural_key="h", program_id=program.id, phase="enrollment", kind=GateKind.CITY_REVIEW, title="h",
                     subject_type="batch", items=[5], decider_role=Role.PROGRAM_MANAGER,
                     opened_at=datetime(2025, 9, 22, tzinfo=UTC), due_on=date(2025, 9, 30), decision={"items": {}})
        session.add_all([gate, empty])
        session.commit()
        ids = (gate.id, empty.id)
    script = ScriptDirectory.from_config(alembic_config())
    before = script.get_revision("0029_gate_decision_outcomes").down_revision
    cfg = alembic_config(empty_engine)

    def stored() -> list[object]:
        with empty_engine.connect() as conn:
            return [conn.execute(text("select decision from gate where id = :i"), {"i": i}).scalar_one() for i in ids]

    def as_json(values: list[object]) -> list[object]:
        return [json.loads(v) if isinstance(v, str) else v for v in values]

    with empty_engine.begin() as conn:  # back to the old form: old rows written by the old code
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, str(before))
    assert as_json(stored()) == [old, {"items": {}}]
    upgrade(empty_engine)
    assert as_json(stored()) == [
        {"outcomes": [{"decision": "approve", "reason": None, "by": "manager", "at": at, "items": [1, 2, 3]},
                      {"decision": "reject", "reason": "材料不全", "by": "manager", "at": at, "items": [4]}]},
        {"outcomes": []}]
    with empty_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, str(before))
    assert as_json(stored()) == [old, {"items": {}}]


def test_violations_natural_key_is_unique_and_compares_object_key_bytewise(empty_engine):
    """Migration 0031: the key is a unique index; PostgreSQL compares its object_key by bytes (memcmp, not strcoll —
    the cost of writing a first pass's violations), which keeps the same rows apart as the collated constraint did."""
    upgrade(empty_engine)
    key = next(i for i in inspect(empty_engine).get_indexes("violation") if i["name"] == "ux_violation_key")
    assert key["unique"]
    assert key["column_names"] == ["program_id", "rule", "subject_type", "subject_id", "object_key", "occurrence"]
    row = ("INSERT INTO violation (program_id, rule, subject_type, subject_id, object_key, occurrence, state, evidence,"
           " detected_on, detected_at) VALUES (1, 'late_delivery', 'enterprise', 7, :key, 1, 'open', '{}',"
           " '2026-01-05', '2026-01-05 08:00:00+08')")
    with empty_engine.begin() as conn:
        conn.execute(text(row), {"key": "PO00000001"})
        conn.execute(text(row), {"key": "po00000001"})  # other bytes: another key, under either comparison
    with pytest.raises(IntegrityError), empty_engine.begin() as conn:
        conn.execute(text(row), {"key": "PO00000001"})
    if empty_engine.dialect.name == "postgresql":
        with empty_engine.connect() as conn:
            opclasses = conn.execute(text(
                "SELECT a.attname, o.opcname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
                " JOIN LATERAL unnest(x.indkey, x.indclass) AS k(attnum, opclass) ON true"
                " JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum"
                " JOIN pg_opclass o ON o.oid = k.opclass WHERE c.relname = 'ux_violation_key'")).all()
        assert dict(opclasses)["object_key"] == "varchar_pattern_ops"
        assert dict(opclasses)["rule"] != "varchar_pattern_ops"  # lookups by rule keep their plans


def test_only_open_violations_are_indexed_by_rule(empty_engine):
    """Migration 0032: the (program_id, rule) index holds open violations only — what every reader of it asks for —
    so the history a first pass records (closed when first seen, most of its rows) is not written into it."""
    upgrade(empty_engine)
    indexes = {i["name"]: i for i in inspect(empty_engine).get_indexes("violation")}
    assert "ix_violation_program_state_rule" not in indexes
    assert indexes["ix_violation_open_rule"]["column_names"] == ["program_id", "rule"]
    with empty_engine.connect() as conn:
        if empty_engine.dialect.name == "postgresql":
            definition = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_violation_open_rule'"
                                           " AND schemaname = current_schema()")).scalar_one()
        else:
            definition = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'ix_violation_open_rule'")
                                      ).scalar_one()
    predicate = definition.upper().split(" WHERE ", 1)[1]
    assert "STATE" in predicate and "'OPEN'" in predicate


def test_one_entitys_audit_history_has_a_narrow_index_and_the_downgrade_restores_the_wide_one(empty_engine):
    """Migration 0034: (entity_id, entity) replaces (entity, entity_id, at, id) — a third of the width that every
    100,000-row audit write spreads over the whole index — and its downgrade puts the old index back."""
    from alembic import command

    def entity_indexes() -> dict[str, list[str | None]]:
        return {i["name"]: i["column_names"] for i in inspect(empty_engine).get_indexes("auditevent")
                if i["name"] in ("ix_audit_entity_id", "ix_audit_entity_id_at")}

    upgrade(empty_engine)
    assert entity_indexes() == {"ix_audit_entity_id": ["entity_id", "entity"]}
    cfg = alembic_config(empty_engine)
    with empty_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0033_audit_links")
    assert entity_indexes() == {"ix_audit_entity_id_at": ["entity", "entity_id", "at", "id"]}
    upgrade(empty_engine)
    assert entity_indexes() == {"ix_audit_entity_id": ["entity_id", "entity"]}


def test_the_audit_filter_indexes_leave_out_link_rows_and_the_downgrade_restores_them_whole(empty_engine):
    """Migration 0035: (program, at, id), (entity, at, id) and (actor, at, id) hold no bulk link's rows (their
    entries were most of every 100,000-row audit write's index cost); the downgrade puts the full indexes back."""
    from alembic import command

    names = ("ix_audit_program_at", "ix_audit_entity_at", "ix_audit_actor_at")

    def predicates() -> dict[str, str]:
        with empty_engine.connect() as conn:
            if empty_engine.dialect.name == "sqlite":
                rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")).all()
            else:
                rows = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes "
                                         "WHERE schemaname = current_schema()")).all()
        defs = {str(n): str(s) for n, s in rows if n in names}
        assert set(defs) == set(names), defs
        return {n: d.split(" WHERE ", 1)[1].replace("(", "").replace(")", "").lower() if " WHERE " in d else ""
                for n, d in defs.items()}

    upgrade(empty_engine)
    assert set(predicates().values()) == {"chain_hash is not null or chain_seq is null"}
    cfg = alembic_config(empty_engine)
    with empty_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0034_audit_entity_index")
    assert set(predicates().values()) == {""}
    upgrade(empty_engine)
    assert set(predicates().values()) == {"chain_hash is not null or chain_seq is null"}


def test_migration_0035_lists_the_links_whose_rows_differ_and_no_other(empty_engine, monkeypatch):
    """Links written before 0035 by `write_audit` could mix entities, users or times; the audit page reads those
    row by row (web/pages_records.py), so the migration lists exactly them."""
    from alembic import command
    from sqlmodel import Session

    import core.bulk
    from models.states import Role
    from models.transitions import AuditRecord

    cfg = alembic_config(empty_engine)
    with empty_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0034_audit_entity_index")
    monkeypatch.setattr(core.bulk, "PRESEAL_ROWS", 3)
    monkeypatch.setattr(core.bulk, "_alike_runs", lambda rows: iter([rows]))  # the writer before 0035: one link
    at = datetime(2025, 10, 1, 1, tzinfo=UTC)

    def record(entity: str, actor: str, when: datetime) -> AuditRecord:
        return AuditRecord(entity=entity, entity_id=1, action="note", from_state=None, to_state=None, actor=actor,
                           role=Role.SYSTEM, at=when, program_id=7)

    with Session(empty_engine) as session:
        core.bulk.write_audit(session, [record("gate", "alice", at) for _ in range(3)])  # alike: not listed
        core.bulk.write_audit(session, [record("gate", "alice", at), record("batch", "alice", at),
                                        record("gate", "alice", at)])  # entities differ
        core.bulk.write_audit(session, [record("gate", "bob", at.replace(day=d)) for d in (1, 2, 3)])  # times differ
        session.commit()
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT chain, first_seq FROM auditlinkmixed ORDER BY first_seq")).all() == [
            (7, 4), (7, 7)]

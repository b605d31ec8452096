"""A list's content as rows of strings: the same digest, diff and stored entries as the dict-per-row definition."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text, update
from sqlmodel import Session, col

from models.catalog import ListEntry, ListVersion
from models.enrollment import Institution
from models.states import ListKind
from tasks.lists.versions import (
    INSTITUTION_COLUMNS,
    ListRows,
    content_hash,
    diff_entries,
    diff_rows,
    insert_entries_portably,
    institution_entries,
    institution_list_query,
    publish_list,
    read_whole_list,
    stored_texts,
    version_entries,
)
from tasks.programs import get_program
from tests.factories import clock_at, make_institution, make_program, make_running_application, shanghai

SLUG = "shenyang-2025"
COLUMNS = ("编码", "名称", "价格(元)", "100%", "a\"b", "\\")
# What a name, an address or a phone can hold: quotes, backslashes, controls, surrogate-free astral characters.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
ROWS = st.dictionaries(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=8),
                       st.tuples(*[TEXT] * (len(COLUMNS) - 1)), max_size=8)


def as_rows(raw: dict[str, tuple[str, ...]]) -> ListRows:
    return ListRows(COLUMNS, {key: (key, *cells) for key, cells in raw.items()})


@settings(max_examples=300, deadline=None)
@given(ROWS)
def test_the_digest_is_the_content_hash_versions_and_gates_are_known_by(raw: dict[str, tuple[str, ...]]) -> None:
    rows = as_rows(raw)
    assert rows.digest() == content_hash(rows.entries())
    for key, canonical in rows.canonical().items():
        assert canonical == json.dumps(rows.entry(key), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def test_a_value_that_is_not_text_still_hashes_as_its_content() -> None:
    rows = ListRows(("k", "n"), {"A": ("A", 3), "B": ("B", None)})  # type: ignore[dict-item]
    assert rows.digest() == content_hash(rows.entries())


@settings(max_examples=300, deadline=None)
@given(ROWS, ROWS, st.booleans())
def test_the_diff_from_stored_text_is_the_diff_of_the_content(old_raw: dict[str, tuple[str, ...]],
                                                              new_raw: dict[str, tuple[str, ...]],
                                                              legacy: bool) -> None:
    old, new = as_rows(old_raw), as_rows({**old_raw, **new_raw})
    # A version stored by the earlier serialiser (ASCII escapes, spaces, column order) compares as content.
    texts = {k: json.dumps(e) for k, e in old.entries().items()} if legacy else old.canonical()
    assert diff_rows(texts, new) == diff_entries(old.entries(), new.entries())


def test_an_unchanged_entry_stored_in_another_format_is_not_a_change() -> None:
    old = as_rows({"X1": ("名称", "12.50", "", "", "")})
    legacy = {"X1": json.dumps(old.entry("X1"))}
    assert legacy["X1"] != old.canonical()["X1"]
    assert diff_rows(legacy, old) == {"added": [], "removed": [], "changed": []}


def running(engine: Engine, n: int) -> list[Institution]:
    program = make_program(engine, SLUG)
    insts = [make_institution(engine, name=f"机构\"{i}\"\\<{i}>") for i in range(n)]
    for inst in insts:
        make_running_application(engine, program, inst, running_at=shanghai(2025, 9, 30, 9))
    return insts


def publish(engine: Engine, day: int) -> ListVersion | None:
    with Session(engine, expire_on_commit=False) as session:
        program, defn = get_program(session, SLUG)
        version = publish_list(session, program, defn, "institutions", clock=clock_at(2025, 10, day, 10))
        session.commit()
        return version


def test_stored_entries_read_back_as_the_published_content(engine: Engine) -> None:
    running(engine, 3)
    version = publish(engine, 9)
    assert version is not None and version.id is not None
    with Session(engine) as session:
        program, _ = get_program(session, SLUG)
        assert version_entries(session, version.id) == institution_entries(session, program.id or 0)
        texts = stored_texts(session, version.id)
    assert version.content_hash == content_hash(version_entries_of(engine, version.id))
    assert all(json.loads(t)["单位名称"].startswith("机构") for t in texts.values())
    assert list(json.loads(next(iter(texts.values())))) == sorted(INSTITUTION_COLUMNS)  # the canonical text


def version_entries_of(engine: Engine, version_id: int) -> dict[str, dict[str, object]]:
    with Session(engine) as session:
        return version_entries(session, version_id)


def test_a_version_stored_before_the_canonical_text_diffs_only_what_changed(engine: Engine) -> None:
    insts = running(engine, 4)
    first = publish(engine, 9)
    assert first is not None and first.id is not None
    with Session(engine) as session:  # rewrite v1's entries as the ORM's JSON column wrote them before
        entries = session.execute(select(ListEntry.id, ListEntry.data).where(col(ListEntry.version_id) == first.id)).all()
        for entry_id, data in entries:
            session.execute(update(ListEntry).where(col(ListEntry.id) == entry_id).values(data=data))
        session.commit()
        legacy = stored_texts(session, first.id)
    assert all(" " in t for t in legacy.values())  # the old format (", " and ": ")
    assert publish(engine, 10) is None  # same content, same digest: no new version
    with Session(engine) as session:
        session.execute(update(Institution).where(col(Institution.id) == insts[1].id).values(phone="024-1"))
        session.commit()
    second = publish(engine, 11)
    assert second is not None
    assert second.diff == {"added": [], "removed": [], "changed": [insts[1].insurance_code]}
    assert (second.number, second.entry_count, second.kind) == (2, 4, ListKind.INSTITUTIONS)


def test_an_empty_list_before_any_version_publishes_nothing(engine: Engine) -> None:
    make_program(engine, SLUG)
    assert publish(engine, 9) is None


def test_a_whole_list_is_joined_without_nested_loops_on_postgresql(engine: Engine) -> None:
    """Stale statistics after a bulk import once made this join a nested loop of 100,000 × 100,000 rows."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL planner setting")
    running(engine, 3)  # three rows: left alone, the planner would happily loop
    with Session(engine) as session:
        program, _ = get_program(session, SLUG)
        connection = session.connection()
        query = institution_list_query(program.id or 0).compile(connection, compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in read_whole_list(connection, text(f"EXPLAIN {query}")))
        assert "Join" in plan and "Nested Loop" not in plan
        assert connection.exec_driver_sql("SHOW enable_nestloop").scalar_one() == "on"  # put back after it
        assert len(read_whole_list(connection, institution_list_query(program.id or 0))) == 3


def test_entries_inserted_by_the_portable_path_read_back_as_their_text(engine: Engine) -> None:
    """The path for a database other than SQLite or PostgreSQL/psycopg: texts go in as they are."""
    running(engine, 2)
    version = publish(engine, 9)
    assert version is not None and version.id is not None
    with Session(engine) as session:
        texts = stored_texts(session, version.id)
        other = ListVersion(program_id=version.program_id, kind=ListKind.INSTITUTIONS, number=99,
                            content_hash=version.content_hash, published_at=version.published_at)
        session.add(other)
        session.flush()
        assert other.id is not None
        insert_entries_portably(session.connection(), other.id, texts, sorted(texts))
        assert stored_texts(session, other.id) == texts
        assert version_entries(session, other.id) == version_entries(session, version.id)

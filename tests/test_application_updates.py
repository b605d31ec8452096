"""An application's state change rewrites its row in place on PostgreSQL (a HOT update, no index touched).

Enrollment moves 100,000 applications through four states; with state in an index every move wrote a
new entry into each of the table's indexes (migration 0005, issue #6).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, text, update

from models.states import ApplicationState
from models.tables import Application
from tests.conftest import _truncate_all
from tests.factories import make_applications, make_institution, make_program, shanghai

pytestmark = pytest.mark.postgres
ROWS = 200  # several pages


@pytest.fixture
def pg(pg_schema_engine: Engine) -> Iterator[Engine]:
    _truncate_all(pg_schema_engine)
    yield pg_schema_engine


def _updates(conn: Connection) -> tuple[int, int]:
    """(updates, of which HOT) of the application table, as PostgreSQL counted them.

    A backend reports its counts at most once a second: this one is told to report now, and the
    counts are then read fresh (not from the transaction's snapshot of the statistics).
    """
    conn.execute(text("SELECT pg_stat_force_next_flush()"))
    conn.commit()
    conn.execute(text("SELECT pg_stat_clear_snapshot()"))
    row = conn.execute(text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                            "WHERE relid = 'application'::regclass")).one()
    conn.commit()
    return int(row[0]), int(row[1])


def test_a_state_change_of_every_application_is_largely_made_in_place(pg: Engine) -> None:
    """In one statement over every row, only the room left on each page can take the new versions
    (old ones are not dead until it commits): ~30 % of a page for ~70 % of rows. With state indexed,
    or pages packed full, none would be in place."""
    program = make_program(pg)
    institutions = [make_institution(pg) for _ in range(ROWS)]
    make_applications(pg, program, institutions, submitted_at=shanghai(2025, 9, 1, 9))
    with pg.connect() as conn:  # one backend: its counts are the ones flushed
        before, before_hot = _updates(conn)
        conn.execute(update(Application).where(Application.state == ApplicationState.SUBMITTED)  # type: ignore[arg-type]
                     .values(state=ApplicationState.DISTRICT_APPROVED))
        conn.commit()
        after, after_hot = _updates(conn)
    assert after - before == ROWS
    assert after_hot - before_hot >= 0.3 * ROWS


def test_the_table_keeps_room_on_each_page_for_those_updates(pg: Engine) -> None:
    with pg.connect() as conn:
        options = conn.execute(text("SELECT reloptions FROM pg_class WHERE oid = 'application'::regclass")).scalar_one()
    assert "fillfactor=70" in options

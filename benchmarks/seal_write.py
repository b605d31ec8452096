"""The audit seal's cost on one bulk transition, sealed against unsealed (issue #18), without figure 1's noise.

    python -m benchmarks.seal_write sqlite [N] [PAIRS]
    python -m benchmarks.seal_write postgresql://postgres@127.0.0.1:5432/DB [N] [PAIRS]   # drops DB's public schema

A fresh database gets 3 bulk transitions of N audit rows (so the table and its indexes are not empty), then PAIRS
pairs of one more transition (`audit_from_select` of N rows from a table), sealed and unsealed, the order
alternating, each ROLLED BACK: every write sees the same database, which figure 1's runs (each in its own database,
minutes apart) cannot. CPU seconds of the call: this process, plus on PostgreSQL its backend's (from /proc).
Run it from two checkouts in turn (same venv) to compare their seals. Prints JSON: each pair's extra, the median.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any


def _backend_cpu(conn: Any, postgres: bool) -> float:
    if not postgres:
        return 0.0
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str]) -> None:
    from sqlalchemy import Column, Integer, MetaData, Table, Text, literal, select, text
    from sqlmodel import Session

    from core.audit_chain import set_sealing
    from core.bulk import audit_from_select
    from core.db import make_engine, transaction
    from models.states import Role
    from models.tables import metadata

    where, n, pairs = argv[0], int(argv[1]) if len(argv) > 1 else 100_000, int(argv[2]) if len(argv) > 2 else 8
    postgres = where != "sqlite"
    engine = make_engine(where if postgres else f"sqlite:///{tempfile.mkdtemp(prefix='seal-write-')}/a.db")
    if postgres:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    metadata.create_all(engine)
    source = Table("seal_write_source", MetaData(), Column("entity_id", Integer, primary_key=True),
                   Column("reason", Text))
    source.create(engine)
    with engine.begin() as conn:
        conn.execute(source.insert(), [{"entity_id": i, "reason": None} for i in range(n)])

    def write(session: Session, i: int) -> int:
        return audit_from_select(session, select(source.c.entity_id, literal(None).label("reason")),
                                 entity="application", action=f"step{i}", from_state="approved", to_state="running",
                                 actor="系统", role=Role.SYSTEM, at=datetime(2025, 9, 1, 2, tzinfo=UTC), program_id=1,
                                 data={"batch": i})

    for i in range(3):
        with transaction(engine) as session:
            write(session, i)
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE auditevent")
    cpu: dict[bool, list[float]] = {True: [], False: []}
    for i in range(pairs):
        for seal in (True, False) if i % 2 else (False, True):
            set_sealing(seal)
            with Session(engine) as session:
                conn = session.connection()
                backend, own = _backend_cpu(conn, postgres), time.process_time()
                write(session, 10 + i)
                cpu[seal].append(round(time.process_time() - own + _backend_cpu(conn, postgres) - backend, 3))
                session.rollback()
    set_sealing(True)
    extra = [round(a - b, 3) for a, b in zip(cpu[True], cpu[False], strict=True)]
    print(json.dumps({"rows": n, "pairs_extra": extra, "median_extra": round(statistics.median(extra), 3),
                      "sealed_median": statistics.median(cpu[True]), "unsealed_median": statistics.median(cpu[False])}))


if __name__ == "__main__":
    main(sys.argv[1:])

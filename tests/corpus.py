"""What the bad-input corpus tests share (issue #18): hypothesis settings and the line each family prints.

Derandomized in CI (.ci/run sets SANJIN_REQUIRE_POSTGRES=1; CI=1 as well), so a red build replays the same examples
on any machine; elsewhere every run draws new examples, so a developer's runs keep exploring. No example database:
the corpus leaves nothing in the work tree.
"""

from __future__ import annotations

import os
import re
import time

from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, func, select

from models.tables import metadata

CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH = re.compile(r"[A-Za-z]{3,}")
IN_CI = bool(os.environ.get("CI")) or os.environ.get("SANJIN_REQUIRE_POSTGRES") == "1"


def corpus_settings(examples: int) -> settings:
    """`examples` generated cases, no deadline (a loaded machine), reproducible in CI."""
    return settings(max_examples=examples, deadline=None, database=None, derandomize=IN_CI,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


class Stopwatch:
    """Wall and CPU time of this process since it was made: on a loaded machine the wall time says little alone."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __str__(self) -> str:
        return f"{time.perf_counter() - self.wall:.1f} s, {time.process_time() - self.cpu:.1f} s CPU"


def report(family: str, database: str, counts: dict[str, int], took: Stopwatch | None = None) -> str:
    """One line per family and database, e.g. "web-form corpus [postgresql]: 312 cases (sign-in 60, …)"."""
    parts = ", ".join(f"{name} {n}" for name, n in counts.items())
    line = f"\n{family} [{database}]: {sum(counts.values())} cases ({parts}), every one refused"
    line += f" in {took}" if took else ""
    print(line)
    return line


def row_counts(engine: Engine, *, leave_out: frozenset[str] = frozenset()) -> dict[str, int]:
    """Every table's row count in one statement (a round trip per table, per case, was a third of the corpus's time)."""
    tables = [t for t in metadata.sorted_tables if t.name not in leave_out]
    query = select(*(select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables))
    with engine.connect() as conn:
        row = conn.execute(query).one()
    return {t.name: int(n) for t, n in zip(tables, row, strict=True)}

"""`sanjin report coverage`: coverage by district and kind against each dated target, and when each is reached.

The rate is that of the last N weeks: coverage is counted on each of the N + 1 weekly days up to today against
today's register version (so a new register does not read as a jump in participation), and models/coverage.py
projects each target from that series.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from models.clock import Clock
from models.coverage import Projection, project
from models.states import KIND_LABELS, InstitutionKind
from tasks.programs import get_program
from tasks.reports.coverage import Coverage, CoverageRow, coverage, coverage_on_days, register_version

DEFAULT_WEEKS = 4


@dataclass(frozen=True)
class CoverageLine:
    """One district, kind or the whole program: today's figures, its weekly series and each target's projection."""

    key: str
    label: str
    covered: int
    total: int
    series: list[tuple[date, int]]
    projections: list[Projection]

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "covered": self.covered, "designated": self.total,
                "share": round(self.covered / self.total, 4) if self.total else 0.0,
                "series": [{"date": d.isoformat(), "covered": n} for d, n in self.series],
                "targets": [{"by": p.by.isoformat(), "share": float(p.share), "needed": p.needed, "gap": p.gap,
                             "met": p.met, "reached_on": p.reached_on.isoformat() if p.reached_on else None,
                             "on_time": p.on_time, "gap_at_target": p.gap_at_target,
                             "rate_per_week": float(p.rate_per_day * 7), "text": p.describe()}
                            for p in self.projections]}


@dataclass(frozen=True)
class CoverageReport:
    slug: str
    name: str
    today: date
    weeks: int
    register_as_of: date | None
    unregistered: int
    total: CoverageLine
    by_district: list[CoverageLine]
    by_kind: list[CoverageLine]

    def as_json(self) -> dict[str, Any]:
        return {"program": self.slug, "name": self.name, "today": self.today.isoformat(), "weeks": self.weeks,
                "register_as_of": self.register_as_of.isoformat() if self.register_as_of else None,
                "unregistered_participants": self.unregistered, "total": self.total.as_json(),
                "by_district": [line.as_json() for line in self.by_district],
                "by_kind": [line.as_json() for line in self.by_kind]}


def _kind_label(key: str) -> str:
    try:
        return KIND_LABELS[InstitutionKind(key)]
    except ValueError:
        return key


def history_days(today: date, weeks: int, history: int, since: date | None) -> list[date]:
    """The days counted before today: each of the last `weeks` weeks, and before them up to `history` points four
    weeks apart, none before `since` (the program's first day), oldest first."""
    earlier = [today - timedelta(weeks=weeks + 4 * k) for k in range(history, 0, -1)]
    recent = [today - timedelta(weeks=w) for w in range(weeks, 0, -1)]
    return [d for d in earlier if since is None or d >= since] + recent


Past = list[tuple[date, Coverage]]


def coverage_history(engine: Engine, slug: str, today: date, *, weeks: int = DEFAULT_WEEKS, history: int = 0) -> Past:
    """The counted days before today (`history_days`), each against today's register version, in one statement.

    Days already past do not change when today's data does (a decision today is dated today; one who leaves
    today still took part before), so the overview keeps this for the day (web/snapshots.py).
    """
    with Session(engine) as session:
        program, defn = get_program(session, slug)
        assert program.id is not None
        version = register_version(session, program.id, today)
        began = min((p.window.opens for p in defn.timeline()), default=None)
        days = history_days(today, weeks, history, began)
        return list(zip(days, coverage_on_days(session, program.id, days, as_of=version), strict=True))


def coverage_report(engine: Engine, slug: str, *, clock: Clock, weeks: int = DEFAULT_WEEKS, history: int = 0,
                    past: Past | None = None, now: Coverage | None = None) -> CoverageReport:
    """Today's coverage of the program and its projection against every target of `rules.coverage_targets`.

    `history` adds up to that many points four weeks apart before the last `weeks` weeks (the overview's line
    over time), from the program's first day on, all counted by one statement against today's register version.
    `past` (from `coverage_history`) and `now` (today's coverage) are given when the caller has them already.
    """
    today = clock.today()
    if past is None:
        past = coverage_history(engine, slug, today, weeks=weeks, history=history)
    with Session(engine) as session:
        program, defn = get_program(session, slug)
        assert program.id is not None
        if now is None:
            now = coverage(session, program.id, today, as_of=register_version(session, program.id, today))
    points: Past = [*past, (today, now)]
    targets = sorted(defn.rules.coverage_targets, key=lambda t: t.by)

    def line(key: str, label: str, pick: Any) -> CoverageLine:
        series = [(d, pick(c)[0]) for d, c in points]
        covered, total = pick(now)
        return CoverageLine(key, label, covered, total, series,
                            [project(series, total, t.by, t.share, today, weeks) for t in targets])

    def rows(select_rows: Any, labeller: Any) -> list[CoverageLine]:
        def pick_of(key: str) -> Any:
            def pick(c: Coverage) -> tuple[int, int]:
                found: CoverageRow | None = next((r for r in select_rows(c) if r.key == key), None)
                return (found.covered, found.total) if found else (0, 0)
            return pick
        return [line(r.key, labeller(r.key), pick_of(r.key)) for r in select_rows(now)]

    return CoverageReport(slug, program.name, today, weeks, now.register_as_of, now.unregistered,
                          line("total", "合计", lambda c: (c.covered, c.total)),
                          rows(lambda c: c.by_district, lambda k: k), rows(lambda c: c.by_kind, _kind_label))


__all__ = ["DEFAULT_WEEKS", "CoverageLine", "CoverageReport", "Past", "coverage_history", "coverage_report",
           "history_days"]

"""Optional pyinstrument profiles of a stage: a text report on disk and its top entries in the JSON."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PRODUCT_DIRS = ("models/", "tasks/", "flows/", "sanjin/", "notifications/")


@contextmanager
def profiled(out_dir: Path | None, name: str, summaries: dict[str, Any]) -> Iterator[None]:
    """Profile the block with pyinstrument when `out_dir` is given; otherwise do nothing."""
    if out_dir is None:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="enabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{name}.txt"
        path.write_text(profiler.output_text(unicode=True, color=False), encoding="utf-8")
        session = profiler.last_session
        assert session is not None
        summaries[name] = {"report": str(path), "duration_s": round(session.duration, 3),
                           **top_entries(session.root_frame())}


def top_entries(root: Any, limit: int = 10) -> dict[str, list[dict[str, Any]]]:
    """The functions with most self time (anywhere), and the product functions with most inclusive time."""
    self_time: dict[tuple[str, str, int], float] = {}
    inclusive: dict[tuple[str, str, int], float] = {}

    def key(frame: Any) -> tuple[str, str, int]:
        return (frame.function, frame.file_path_short or "", frame.line_no or 0)

    def walk(frame: Any, seen: frozenset[tuple[str, str, int]]) -> None:
        if frame.is_synthetic:  # "[self]" and similar: time of the parent's own lines
            return
        k = key(frame)
        own = frame.time - sum(c.time for c in frame.children if not c.is_synthetic)
        self_time[k] = self_time.get(k, 0.0) + own
        if k not in seen and any(d in (frame.file_path_short or "") for d in PRODUCT_DIRS):
            inclusive[k] = inclusive.get(k, 0.0) + frame.time
        for child in frame.children:
            walk(child, seen | {k})

    if root is not None:
        walk(root, frozenset())

    def rows(table: dict[tuple[str, str, int], float]) -> list[dict[str, Any]]:
        best = sorted(table.items(), key=lambda kv: -kv[1])[:limit]
        return [{"function": f, "where": f"{p}:{line}", "seconds": round(s, 3)} for (f, p, line), s in best]

    return {"top_self": rows(self_time), "top_product_inclusive": rows(inclusive)}

"""`sanjin status` drawn in the terminal: the timeline with today's position, then counts per phase."""

from __future__ import annotations

from datetime import date

from rich.console import Console
from rich.table import Table

from tasks.status import ProgramStatus

WINDOW_LABELS = {"not_yet_open": "未开始", "open": "进行中", "closed": "已结束"}


def _bar(start: date, end: date, opens: date, closes: date | None, today: date, width: int = 40) -> str:
    span = max((end - start).days, 1)

    def col(d: date) -> int:
        return min(width - 1, max(0, round((d - start).days / span * (width - 1))))

    cells = ["·"] * width
    for i in range(col(opens), col(closes or end) + 1):
        cells[i] = "█"
    if start <= today <= end:
        cells[col(today)] = "[bold red]│[/]"
    return "".join(cells)


def print_status(console: Console, status: ProgramStatus) -> None:
    clock = "模拟时钟" if status.simulated else "系统时间"
    console.print(f"[bold]{status.name}[/]  今天 / today: {status.today}（{clock}）")
    start = min(p.opens for p in status.phases)
    end = max([p.closes or p.opens for p in status.phases] + [status.today])
    timeline = Table("阶段 / phase", "窗口 / window", f"{start} → {end}", "状态", "待审批", "计数 / counts")
    for p in status.phases:
        counts = "  ".join(f"{k}:{v}" for k, v in sorted(p.counts.items())) or "—"
        timeline.add_row(p.label, f"{p.opens} ~ {p.closes or '长期'}",
                         _bar(start, end, p.opens, p.closes, status.today), WINDOW_LABELS[p.window],
                         str(p.open_gates or ""), counts)
    console.print(timeline)
    open_windows = [p.label for p in status.phases if p.window == "open"]
    console.print(f"开放中的窗口 / open windows: {'、'.join(open_windows) or '无'}")
    if status.lists:
        console.print("已发布清单版本 / list versions: " + "  ".join(f"{k} v{v}" for k, v in sorted(status.lists.items())))
    if status.outbox:
        console.print("通知 / outbox: " + "  ".join(f"{k}:{v}" for k, v in sorted(status.outbox.items())))

"""`sanjin status` drawn in the terminal: the timeline with today's position, then counts per phase."""

from __future__ import annotations

from datetime import date

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from models.labels import LIST_KIND_LABELS, NOTICE_STATUS_LABELS, SHORT_PHASES, STATE_LABELS, WINDOW_LABELS
from tasks.status import ProgramStatus


def _bar(start: date, end: date, opens: date, closes: date | None, today: date, width: int = 30) -> str:
    span = max((end - start).days, 1)

    def col(d: date) -> int:
        return min(width - 1, max(0, round((d - start).days / span * (width - 1))))

    cells = ["·"] * width
    for i in range(col(opens), col(closes or end) + 1):
        cells[i] = "█"
    if start <= today <= end:
        cells[col(today)] = "[bold red]│[/]"  # the one markup of the table: its other cells are escaped
    return "".join(cells)


def print_status(console: Console, status: ProgramStatus) -> None:
    clock = "模拟时钟" if status.simulated else "系统时间"
    console.print(f"[bold]{escape(status.name)}[/]  今天 / today: {status.today}（{clock}）", markup=True)
    if status.calendar_warning:
        console.print(f"[yellow]节假日安排 / calendar:[/] {escape(status.calendar_warning)}", highlight=False, markup=True)
    start = min(p.opens for p in status.phases)
    end = max([p.closes or p.opens for p in status.phases] + [status.today])
    timeline = Table("阶段", "窗口", f"{start} → {end}（红线=今天）", "状态", "待审批", "各状态数量", expand=False)
    for p in status.phases:
        counts = "  ".join(f"{STATE_LABELS.get(k, k)} {v}" for k, v in sorted(p.counts.items())) or "—"
        timeline.add_row(SHORT_PHASES.get(p.phase, p.label), f"{p.opens:%m-%d}~{p.closes:%m-%d}" if p.closes
                         else f"{p.opens:%m-%d}~长期", Text.from_markup(_bar(start, end, p.opens, p.closes, status.today)),
                         WINDOW_LABELS[p.window], str(p.open_gates or ""), counts)
    console.print(timeline)
    open_windows = [p.label for p in status.phases if p.window == "open"]
    console.print(f"开放中的窗口 / open windows: {'、'.join(open_windows) or '无'}")
    if status.lists:
        console.print("已发布清单版本 / list versions: " + "  ".join(
            f"{LIST_KIND_LABELS.get(k, k)} 第{v}版" for k, v in sorted(status.lists.items())))
    if status.outbox:
        console.print("通知 / outbox: " + "  ".join(
            f"{NOTICE_STATUS_LABELS.get(k, k)} {v}" for k, v in sorted(status.outbox.items())))


RUN_STEPS = {"snapshot": "每日统计"}  # steps of the program flow that are not phases (was shown as 其他)


def print_run_summary(console: Console, result: dict[str, object]) -> None:
    """What a run did, in words: the phases reconciled, gates waiting, notices sent; `--json` has the rest."""
    ran, waiting, blocked = [], 0, []
    for key, value in result.items():
        if key in ("notices", "reminders"):
            continue
        ran.append(SHORT_PHASES.get(key) or RUN_STEPS.get(key, "其他"))
        if isinstance(value, dict):
            waiting += len(value.get("open_gate_ids") or [])
            if value.get("calendar_blocked"):
                blocked.append(f"{SHORT_PHASES.get(key, '其他')}：{value['calendar_blocked']}")
    console.print(f"已运行 / ran: {'、'.join(ran) or '无'}")
    if waiting:
        console.print(f"待决定的审批事项 / gates waiting: {waiting} 项（sanjin gate list 查看）")
    for line in blocked:
        console.print(f"[yellow]因节假日安排未录入而暂停 / calendar blocked:[/] {escape(line)}", highlight=False, markup=True)
    sent = result.get("notices")
    if isinstance(sent, dict):
        console.print(f"通知 / notices: 已发送 {sent.get('sent', 0)}，稍后重试 {sent.get('retried', 0)}，"
                      f"发送失败 {sent.get('dead', 0)}")

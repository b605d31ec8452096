"""Letters nobody can e-mail, printed: one HTML document of a program's no-address letters, one per A4 page.

Issue #19: recipients without e-mail were only listed, their letters never delivered (the demo's 13
alliance invitations among them). A person prints the batch (`sanjin notices print`, or the outbox
page's button); the letters are the ones e-mail would have carried (same rendering, same 文号 and date),
each on its own page, and each is marked printed with an audit row in the same transaction, so the
next batch holds only the letters written since.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from markupsafe import escape
from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from core.bulk import write_audit
from models.clock import Clock, to_shanghai
from models.labels import NOTICE_KIND_LABELS
from models.outbox import Notice
from models.states import NoticeStatus, Role
from models.transitions import AuditRecord
from notifications.render import render_notice
from tasks.outbox.send_notices import program_letterheads, render_context
from tasks.programs import get_program

_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S)
BATCH_MAX = 5_000  # letters in one document: a print job a browser still opens


@dataclass(frozen=True)
class PrintBatch:
    html: str
    notice_ids: list[int]
    program_name: str


def _page(body: str) -> str:
    return f'<section class="letter">{body}</section>'


def _document(title: str, letters: list[str], printed_at: datetime) -> str:
    """The batch: A4 pages, one letter per page, nothing of the web app around it."""
    stamp = f"{to_shanghai(printed_at):%Y-%m-%d %H:%M}"
    style = ("@page{size:A4;margin:15mm}body{margin:0;background:#fff}"
             "section.letter{page-break-after:always;break-after:page}"
             "section.letter:last-child{page-break-after:auto;break-after:auto}"
             "section.letter table{max-width:100%!important}"
             "p.cover{font-family:'WenQuanYi Micro Hei','Noto Sans CJK SC',sans-serif;font-size:12px;color:#555}"
             "@media print{p.cover{display:none}}")
    cover = (f'<p class="cover">{escape(title)}：共 {len(letters)} 封，{stamp} 打印。'
             "每封一页，请用 A4 纸打印。</p>")
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{style}</style></head><body>{cover}{''.join(letters)}</body></html>")


def print_no_address(engine: Engine, slug: str, *, clock: Clock, actor: str, role: Role,
                     again: bool = False) -> PrintBatch:
    """Render the program's letters without e-mail not yet printed (all of them with `again`) and mark them printed.

    Marking and the audit rows commit together; the HTML is returned for the caller to save or serve.
    """
    now = clock.now()
    with Session(engine) as session, session.begin():
        program, _ = get_program(session, slug)
        stmt = (select(Notice).where(col(Notice.program_id) == program.id, col(Notice.status) == NoticeStatus.NO_ADDRESS)
                .order_by(col(Notice.id)).limit(BATCH_MAX).with_for_update())
        if not again:
            stmt = stmt.where(col(Notice.printed_at).is_(None))
        rows = list(session.scalars(stmt).all())
        heads = program_letterheads(engine, [program.id]) if rows else {}
        letters = []
        for n in rows:
            rendered = render_notice(n.kind, {**render_context(n, heads), "printed": True})  # a paper letter's footer
            found = _BODY.search(rendered.html)
            letters.append(_page(found.group(1) if found else str(escape(rendered.text))))
        ids = [int(n.id or 0) for n in rows]
        if ids:
            session.execute(update(Notice).where(col(Notice.id).in_(ids)).values(printed_at=now))
            write_audit(session, [AuditRecord("notice", i, "print", None, None, actor, role, now,
                                              reason=f"打印{NOTICE_KIND_LABELS.get(n.kind, '通知')}（无邮箱，邮寄或送达）",
                                              program_id=program.id) for i, n in zip(ids, rows, strict=True)])
        name = program.name
    return PrintBatch(_document(f"{name} 无邮箱通知打印", letters, now), ids, name)

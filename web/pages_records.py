"""Published lists with versions and diffs, the notice outbox with resend, and the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from itertools import groupby
from typing import Any
from urllib.parse import quote

from sqlalchemy import and_, func, literal, or_
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from core.sql_hints import HINTED, unindexed
from models.audit import AuditEvent, AuditLink, AuditLinkMixed
from models.catalog import ListEntry, ListVersion
from models.clock import SHANGHAI
from models.labels import (
    AUDIT_ACTION_LABELS,
    AUDIT_ENTITY_LABELS,
    LIST_KIND_LABELS,
    NOTICE_KIND_LABELS,
    NOTICE_STATUS_LABELS,
    ROLE_LABELS,
    entity_state_label,
)
from models.outbox import Notice
from models.program import Program, User
from models.reasons import reason_text
from models.states import NoticeStatus, Role
from notifications.render import KINDS as NOTICE_KINDS
from tasks.lists.versions import columns_of, version_rows
from tasks.outbox.followup import resend
from tasks.outbox.printing import print_no_address
from tasks.programs import UnknownProgram, get_program
from tasks.trust.scope import audit_scope, notice_counts, notice_scope
from web.auth import form_ids, posted_form, require_user
from web.exports import chunk_size, download, export_format, stream
from web.keyset import in_order, seek
from web.names import entity_names, people
from web.pagination import Page, page_of
from web.render import flash, page, web

DIFF_SHOWN = 100  # keys listed per kind of change in the summary; the rest through show=added|changed|removed


def lists(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    with Session(ctx.engine) as session:
        try:
            program, _ = get_program(session, request.path_params["slug"])
        except UnknownProgram as exc:
            raise HTTPException(404, f"没有项目 {request.path_params['slug']}") from exc
        versions = session.exec(select(ListVersion).where(ListVersion.program_id == program.id)
                                .order_by(col(ListVersion.kind), col(ListVersion.number).desc())).all()
        publishers = people(session, (v.published_by for v in versions))
    if fmt := export_format(request):
        rows = [(LIST_KIND_LABELS.get(v.kind.value, "清单"), f"第 {v.number} 版", v.entry_count, v.added, v.removed,
                 v.changed, v.published_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
                 publishers.get(v.published_by) or v.published_by, reason_text(v.reason)) for v in versions]
        return download(fmt, f"{program.slug}-已发布清单", f"{program.name} 已发布清单", LIST_COLUMNS, rows,
                        ctx.clock.today())
    return page(request, "lists.html", user, program=program, versions=versions, kind_names=LIST_KIND_LABELS,
                publishers=publishers, pager=page_of(f"/programs/{program.slug}/lists", request.query_params, {}))


LIST_COLUMNS = ("清单", "版本", "条目", "新增", "移除", "变更", "发布时间", "发布人", "说明")


def list_version(request: Request) -> Response:
    """One version, its entries page by page (an institution list has 100,000), and its diff with the previous.

    `show=added|changed` pages through the entries the diff names; removed ones are only keys here
    (their data is in the previous version).
    """
    ctx = web(request)
    user = require_user(request, ctx.engine)
    version_id = int(request.path_params["version_id"])
    show = request.query_params.get("show") or ""
    if show not in ("", "added", "changed", "removed"):
        raise HTTPException(400, f"未知的筛选条件：{show}")
    # The diff's keys are one JSON list: its pages are slices of it. The entries are read by key (seek).
    pager = page_of(f"/lists/{version_id}", request.query_params, {"show": show}, keyset=not show)
    with Session(ctx.engine) as session:
        version = session.get(ListVersion, version_id)
        if version is None:
            raise HTTPException(404, "没有这个清单版本")
        program = session.get(Program, version.program_id)
        if fmt := export_format(request):  # the whole version as its published files have it, or one change kind
            whole = version_rows(session, version_id, columns_of(version.kind))
            wanted = set(version.diff.get(show, [])) if show else None
            title = f"{LIST_KIND_LABELS.get(version.kind.value, '清单')} 第{version.number}版"
            return download(fmt, title, title, whole.columns,
                            [r for k, r in zip(whole.sorted_keys(), whole.ordered(), strict=True)
                             if wanted is None or k in wanted], ctx.clock.today())
        diff = {k: list(version.diff.get(k, [])) for k in ("added", "removed", "changed")}
        query = select(ListEntry.key, ListEntry.data).where(ListEntry.version_id == version_id)
        if show:
            keys = diff[show][pager.offset:pager.offset + pager.per_page]
            rows = list(session.execute(query.where(col(ListEntry.key).in_(keys))).all()) if show != "removed" else []
            found = {key: data for key, data in rows}
            entries = [(key, found.get(key)) for key in keys]
            total = len(diff[show])
        else:
            fetched = session.execute(seek(query, [col(ListEntry.key)], pager)).all()
            entries = [(key, data) for key, data in in_order(fetched, pager)]
            pager = pager.keyed([(key,) for key, _ in entries], len(fetched))
            total = version.entry_count
        publisher = people(session, [version.published_by]).get(version.published_by, version.published_by)
    return page(request, "list_version.html", user, version=version, program=program, entries=entries,
                publisher=publisher,
                kind_names=LIST_KIND_LABELS, diff=diff, diff_shown=DIFF_SHOWN, show=show,
                pager=pager.counted(total), added=set(diff["added"]) if show != "added" else set(),
                changed=set(diff["changed"]))


def _since_until(q: dict[str, str], column: Any) -> list[Any]:
    since, until = _day(q.get("since")), _day(q.get("until"))
    where = []
    if since:
        where.append(column >= since)
    if until:
        where.append(column < until + timedelta(days=1))
    return where


def _program_ids(session: Session, slug: str) -> list[int]:
    return [int(i) for i in session.exec(select(Program.id).where(Program.slug == slug)).all() if i is not None]


def notices(request: Request) -> Response:
    """The outbox, newest first, page by page: filter by program, status, kind, recipient and creation date."""
    ctx = web(request)
    user = require_user(request, ctx.engine)
    q = {k: (request.query_params.get(k) or "").strip() for k in ("program", "status", "kind", "recipient",
                                                                  "since", "until")}
    if q["status"] and q["status"] not in NoticeStatus.__members__.values():
        raise HTTPException(400, f"未知的通知状态：{q['status']}")
    pager = page_of("/notices", request.query_params, q, keyset=True)
    with Session(ctx.engine) as session:
        programs = session.exec(select(Program).order_by(col(Program.slug))).all()
        scope: list[Any] = []
        if (mine := notice_scope(user)) is not None:  # a district reviewer: its districts' letters only
            scope.append(mine)
        program_id = next(iter(_program_ids(session, q["program"])), -1) if q["program"] else None
        if program_id is not None:  # one program (slugs are unique): equality keeps (program_id, id) in id order
            scope.append(col(Notice.program_id) == program_id)
        where = list(scope)
        if q["status"]:
            where.append(col(Notice.status) == NoticeStatus(q["status"]))
        if q["kind"]:
            where.append(col(Notice.kind) == q["kind"])
        if q["recipient"]:
            where.append(or_(col(Notice.recipient_name).contains(q["recipient"], autoescape=True),
                             col(Notice.email).contains(q["recipient"], autoescape=True)))
        where += _since_until(q, col(Notice.created_at))
        by_status = notice_counts(session, user, program_id=program_id)
        # Counted from the status counts when nothing else filters; otherwise not counted (a recipient's
        # substring has no index: counting it would read the whole outbox on every page).
        total = ((by_status.get(q["status"], 0) if q["status"] else sum(by_status.values()))
                 if not (q["kind"] or q["recipient"] or q["since"] or q["until"]) else None)
        if fmt := export_format(request):  # every notice of the filter, streamed a chunk (read by key) at a time
            listed = select(Notice).where(*where)
            return stream(fmt, "通知", "通知（发件箱）", NOTICE_COLUMNS,
                          (list(map(notice_cells, chunk)) for chunk in _chunks(ctx.engine, listed, [col(Notice.id)],
                                                                              lambda n: (int(n.id or 0),))),
                          ctx.clock.today())
        # The page's ids first (an index-only read for a district reviewer: its notices by the recipient index,
        # sorted), then those rows whole: sorting a district's ~9,000 whole rows (their JSON context) cost 60 ms.
        ids = [int(i) for i in session.execute(seek(sa_select(col(Notice.id)).where(*where), [col(Notice.id)], pager,
                                                    descending=True)).scalars()]
        whole = {n.id: n for n in session.exec(select(Notice).where(col(Notice.id).in_(ids)))} if ids else {}
        fetched = [whole[i] for i in ids if i in whole]
        rows = in_order(fetched, pager)
        pager = pager.keyed([(int(n.id or 0),) for n in rows], len(fetched))
        kinds = sorted(set(NOTICE_KINDS) | ({q["kind"]} if q["kind"] else set()))  # no DISTINCT scan of the outbox
    return page(request, "notices.html", user, notices=rows, q=q, labels=NOTICE_STATUS_LABELS, programs=programs,
                by_status=by_status, kinds=kinds, pager=pager if total is None else pager.counted(total),
                can_resend=user.role == Role.PROGRAM_MANAGER)


NOTICE_COLUMNS = ("编号", "类型", "收件人", "邮箱", "状态", "尝试", "创建", "发送", "错误")


def notice_cells(n: Notice) -> tuple[str, ...]:
    """A notice as the outbox page's row reads it."""
    def at(d: datetime | None) -> str:
        return d.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if d else ""
    return (str(n.id), NOTICE_KIND_LABELS.get(n.kind, "通知"), n.recipient_name, n.email or "",
            NOTICE_STATUS_LABELS.get(n.status.value, n.status.value), str(n.attempts), at(n.created_at),
            at(n.sent_at), n.last_error or "")


async def resend_notices(request: Request) -> Response:
    ctx = web(request)
    user, form = await posted_form(request, ctx.engine, Role.PROGRAM_MANAGER)
    ids = form_ids(form.getlist("notice"), "通知编号")
    count = await run_in_threadpool(lambda: resend(ctx.engine, ids, clock=ctx.clock, actor=user.name, role=user.role))
    flash(request, f"已重新排队 {count} 条通知" + ("" if count == len(ids) else f"（{len(ids) - count} 条不可重发或仍无邮箱）"))
    back = str(form.get("back") or "")
    return RedirectResponse(back if back.startswith("/notices") else "/notices", status_code=303)


# The printed letters are the e-mails' HTML: inline styles only, no script, nothing loaded from anywhere.
LETTERS_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"


async def print_notices(request: Request) -> Response:
    """The manager's 打印无邮箱通知: the program's letters nobody can e-mail, one per A4 page, marked printed."""
    ctx = web(request)
    user, form = await posted_form(request, ctx.engine, Role.PROGRAM_MANAGER)
    slug = str(form.get("program") or "")
    if not slug:
        raise HTTPException(400, "请先选择项目")
    try:
        batch = await run_in_threadpool(lambda: print_no_address(ctx.engine, slug, clock=ctx.clock, actor=user.name,
                                                                 role=user.role, again=form.get("again") == "1"))
    except UnknownProgram as exc:
        raise HTTPException(404, f"没有项目 {slug}") from exc
    if not batch.notice_ids:
        flash(request, f"{batch.program_name}：没有待打印的无邮箱通知")
        return RedirectResponse(f"/notices?program={quote(slug)}&status=no_address", status_code=303)
    return HTMLResponse(batch.html, headers={"Content-Security-Policy": LETTERS_CSP})


def _audit_rows(session: Session, events: list[AuditEvent]) -> list[AuditRow]:
    """Audit rows with what they are about and who acted, by name (one query each for the whole page)."""
    names = entity_names(session, ((e.entity, e.entity_id) for e in events))
    actors = people(session, (e.actor for e in events))
    return [AuditRow(e, names.get((e.entity, e.entity_id), ""),
                     actors.get(e.actor) or f"{e.actor}（{ROLE_LABELS.get(e.role.value, '')}）") for e in events]


def _chunks(engine: Any, query: Any, order: list[Any], key: Any, *, descending: bool = False) -> Iterator[list[Any]]:
    """Every row of `query` in `order`, a chunk at a time (web.exports.chunk_size), each chunk read by key after
    the last (never OFFSET)."""
    with Session(engine) as session:
        after: tuple[Any, ...] | None = None
        while True:
            size = chunk_size(after is None)
            chunk_page = Page(1, size, None, "", (), after=after)
            rows = list(session.exec(seek(query, order, chunk_page, descending=descending)).all())[:size]
            if rows:
                yield rows
            if len(rows) < size:
                return
            after = key(rows[-1])


def _rows_up_to(session: Session, column: Any, value: Any, cap: int = 20_000) -> int:
    """How many audit rows outside bulk links have `column == value`, counted by its (partial) index and never
    beyond `cap`: the rows the page walks that index for (a link's rows come by their link, `_linked_keys`)."""
    probe = (sa_select(literal(1)).select_from(AuditEvent).where(column == value, _not_linked()).limit(cap)
             .subquery())
    return int(session.execute(sa_select(func.count()).select_from(probe)).scalar_one())


def audit_page_rows(session: Session, user: User, q: dict[str, str], pager: Page) -> list[AuditEvent]:
    """The audit page's rows for filters `q` (the actor as its login) in the reader's scope: the page's rows in the
    reading direction and the probe row past them, as `seek` gives them (web/keyset.py)."""
    query = select(AuditEvent)
    if (mine := audit_scope(user)) is not None:  # a district reviewer: its districts' rows and its own
        query = query.where(mine)
    program_id, entity, actor = col(AuditEvent.program_id), col(AuditEvent.entity), col(AuditEvent.actor)
    # Newest first is a walk down one index in (at, id) order that stops at the page: the time index,
    # or (migration 0018) the (program, at, id), (entity, at, id) or (user, at, id) one. On SQLite one
    # filter is left to its index, the one with the fewest rows (probed by index up to a cap); the others
    # are hidden from it (core/sql_hints.unindexed), so SQLite (no statistics) does not fetch every row
    # of another index and sort them (160–250 ms at 200,000 rows for a page of 50). PostgreSQL chooses by
    # its statistics, so it is neither probed nor hinted (hinted, it sorted the filtered rows: 111 ms).
    ids = _program_ids(session, q["program"]) if q["program"] else []
    given: list[tuple[Any, Any]] = [(c, v) for c, v in ((actor, q["actor"]), (entity, q["entity"])) if v]
    if q["program"]:
        given.append((program_id, next(iter(ids), -1)))  # -1: no such program, nothing matches
    choose = not q["entity_id"] and session.get_bind().dialect.name in HINTED
    chosen = min(given, key=lambda cv: _rows_up_to(session, *cv), default=(None,))[0] if choose else None

    def filtered(column: Any) -> Any:  # plain on PostgreSQL whatever was chosen
        return column if column is chosen else unindexed(column)

    if q["program"]:
        query = query.where(filtered(program_id) == next(iter(ids), -1))
    if q["entity"]:
        query = query.where(filtered(entity) == q["entity"])
    if q["entity_id"]:  # one entity's history: its own index (entity_id, entity), its few rows sorted after
        # (migration 0034). Every other filter is hidden from SQLite then (nothing is chosen above): walking
        # (entity, at, id) in the page's order would skip the sort but read every row of that entity kind.
        query = query.where(col(AuditEvent.entity_id) == q["entity_id"])
    if q["actor"]:
        query = query.where(filtered(actor) == q["actor"])
    for condition in _since_until(q, col(AuditEvent.at)):
        query = query.where(condition)
    if given and not q["entity_id"]:  # the filter indexes leave out bulk links' rows: those come by their link
        # Each row of a link is checked too (its scope; and the filters, which a link written before migration
        # 0035 by `write_audit` may not share with its first row).
        each_row = _audit_filters({**q, "since": "", "until": ""}, ids, scope=mine, hide=True)
        return _filtered_page(session, query, pager, _audit_filters(q, ids, scope=None, hide=True), each_row,
                              _audit_filters(q, ids, scope=mine, hide=True))
    order = [col(AuditEvent.at), col(AuditEvent.id)]
    return list(session.exec(seek(query, order, pager, descending=True, values=_audit_key)).all())


def _not_linked() -> Any:
    """The filter indexes' predicate (models/audit.NOT_LINKED) as a term of a query's WHERE: SQLite uses a partial
    index only for a query that holds it so; PostgreSQL proves it implied either way."""
    return or_(col(AuditEvent.chain_hash).is_not(None), col(AuditEvent.chain_seq).is_(None))


def _audit_filters(q: dict[str, str], ids: list[int], *, scope: Any, hide: bool) -> list[Any]:
    """The page's filters on an audit row; `hide`: every column hidden from SQLite's index choice
    (core/sql_hints.unindexed), so that it reaches the rows by another way (the time index, a link)."""
    def plain(column: Any) -> Any:
        return unindexed(column) if hide else column

    where: list[Any] = [] if scope is None else [scope]
    if q["program"]:
        where.append(plain(col(AuditEvent.program_id)) == next(iter(ids), -1))
    if q["entity"]:
        where.append(plain(col(AuditEvent.entity)) == q["entity"])
    if q["entity_id"]:
        where.append(col(AuditEvent.entity_id) == q["entity_id"])
    if q["actor"]:
        where.append(plain(col(AuditEvent.actor)) == q["actor"])
    return where + _since_until(q, col(AuditEvent.at))


def _filtered_page(session: Session, query: Any, pager: Page, first_row: list[Any], each_row: list[Any],
                   every_filter: list[Any]) -> list[AuditEvent]:
    """A filtered page's rows (and the probe row past it), as `seek` over `query` would give them, from two walks.

    The filter indexes hold no bulk link's rows (migration 0035), so `query` (the filters, one of them left to its
    index) walks them for every other row, and `_linked_keys` gives the members of the links whose first row
    matches `first_row`: a link's rows share program, entity, actor and instant (core/bulk.py), so they all match
    when it does. Each walk reads keys (at, id) only and stops after the rows the page needs; the keys are merged in
    the reading direction and only the page's rows are read whole (a gate decision's row carries every decided id in
    its JSON: reading the other walk's surplus rows whole doubled the program filter's page).
    """
    order = [col(AuditEvent.at), col(AuditEvent.id)]
    skip = 0 if pager.seek else pager.offset  # a shallow page by number skips `offset` rows of the merged walk
    need = skip + pager.per_page + 1
    down = not pager.backwards  # the reading direction: newest first, unless read backwards
    keys = query.where(_not_linked()).with_only_columns(*order)
    own = [(at, int(i)) for at, i in session.execute(seek(keys, order, pager, descending=True, values=_audit_key)
                                                       .offset(None).limit(need)).all()]
    cursor = pager.after if pager.after is not None else pager.before
    key = _audit_key(cursor) if cursor is not None else None
    boundary = own[-1] if len(own) == need else None
    linked = _linked_keys(session, first_row, each_row, key=key, boundary=boundary, down=down, need=need)
    linked += _mixed_link_keys(session, every_filter, key=key, boundary=boundary, down=down, need=need)
    page_keys = sorted(own + linked, reverse=down)[skip:need]
    ids = [i for _, i in page_keys]
    whole = {e.id: e for e in session.exec(select(AuditEvent).where(col(AuditEvent.id).in_(ids)))} if ids else {}
    return [whole[i] for i in ids if i in whole]


def _linked_keys(session: Session, first_row: list[Any], each_row: list[Any], *, key: tuple[Any, ...] | None,
                 boundary: tuple[Any, ...] | None, down: bool, need: int) -> list[tuple[Any, int]]:
    """The keys (at, id) of up to `need` rows (each matching `each_row`) of the bulk links whose first row matches
    `first_row`, in the reading order (`down`: newest first) after `key` and before `boundary` (the other walk's
    last row, when it filled the page).

    Links are few (one per bulk write). They are found from `auditlink`, each first and last row probed by
    ux_audit_chain (the link's chain hidden from SQLite, so that it does not walk the audit rows probing links
    instead), newest first. A link's rows share one instant, so within it (at, id) order is id order: its ids are
    read by the primary key from the key on, limited to what the page needs — the link's id range when its ids are
    consecutive (they are as written: `_audit_from_select_sealed`, `take_places`), else its chain range, sorted.
    The walk stops at an instant once the rows before it fill the page.
    """
    link, mixed = AuditLink.__table__, AuditLinkMixed.__table__  # type: ignore[attr-defined]
    first, last = AuditEvent.__table__, aliased(AuditEvent.__table__)  # type: ignore[attr-defined]
    links = (sa_select(link.c.chain, link.c.first_seq, link.c.last_seq, first.c.at, first.c.id, last.c.id)
             .join(first, and_(first.c.chain == unindexed(link.c.chain), first.c.chain_seq == link.c.first_seq))
             .join(last, and_(last.c.chain == unindexed(link.c.chain), last.c.chain_seq == link.c.last_seq))
             .where(*first_row, ~sa_select(literal(1)).where(mixed.c.chain == link.c.chain,
                                                             mixed.c.first_seq == link.c.first_seq).exists()))
    if key is not None:
        links = links.where(first.c.at <= key[0] if down else first.c.at >= key[0])
    if boundary is not None:
        links = links.where(first.c.at >= boundary[0] if down else first.c.at <= boundary[0])
    found = sorted(session.execute(links).all(), key=lambda r: (r[3], r[4]), reverse=down)
    rows: list[tuple[Any, int]] = []
    for at, instant in groupby(found, key=lambda r: r[3]):
        if len(rows) >= need:
            break
        # Links of one instant (a decision's districts, on a fixed clock) whose ids are consecutive hold disjoint id
        # ranges: read one after another in id order, they stop once the page is full. Otherwise each is read up to
        # the page's rows and they are merged by id.
        here = sorted(instant, key=lambda r: r[4], reverse=down)
        whole = all(last_id - first_id == last_seq - first_seq for _, first_seq, last_seq, _, first_id, last_id in here)
        group: list[int] = []
        for chain, first_seq, last_seq, _, first_id, last_id in here:
            wanted = need - len(rows) - (len(group) if whole else 0)
            if wanted <= 0:
                break
            if key is not None and at == key[0] and (first_id >= key[1] if down else last_id <= key[1]):
                continue  # wholly on the cursor's other side
            in_link = col(AuditEvent.chain_seq).between(first_seq, last_seq)
            members = sa_select(col(AuditEvent.id))
            if last_id - first_id == last_seq - first_seq:  # by the primary key: the chain hidden from SQLite,
                members = members.where(  # whose (chain, chain_seq) range would read the whole link
                    col(AuditEvent.id).between(first_id, last_id), unindexed(col(AuditEvent.chain)) == chain, in_link)
            else:
                members = members.where(col(AuditEvent.chain) == chain, in_link)
            members = members.where(*each_row)
            if key is not None and at == key[0]:
                members = members.where(col(AuditEvent.id) < key[1] if down else col(AuditEvent.id) > key[1])
            by_id = col(AuditEvent.id).desc() if down else col(AuditEvent.id).asc()
            group += [int(i) for i in session.execute(members.order_by(by_id).limit(wanted)).scalars()]
        keyed = [(at, i) for i in sorted(group, reverse=down)]
        if boundary is not None:
            keyed = [k for k in keyed if (k > boundary) == down]
        rows += keyed
    return rows[:need]


def _mixed_link_keys(session: Session, every_filter: list[Any], *, key: tuple[Any, ...] | None,
                     boundary: tuple[Any, ...] | None, down: bool, need: int) -> list[tuple[Any, int]]:
    """The keys (at, id) of up to `need` rows matching `every_filter` (scope, filters, dates) of the links written
    before migration 0035 whose rows differ (models/audit.AuditLinkMixed), in the reading order after `key` and
    before `boundary`, each row by its own time: their first row stands for nothing. Such links are few and only
    old; each is read through its chain range."""
    link, mixed = AuditLink.__table__, AuditLinkMixed.__table__  # type: ignore[attr-defined]
    spans = session.execute(sa_select(link.c.chain, link.c.first_seq, link.c.last_seq).join(
        mixed, and_(mixed.c.chain == link.c.chain, mixed.c.first_seq == link.c.first_seq))).all()
    at, id_ = col(AuditEvent.at), col(AuditEvent.id)
    rows: list[tuple[Any, int]] = []
    for chain, first_seq, last_seq in spans:
        members = sa_select(at, id_).where(col(AuditEvent.chain) == chain,
                                           col(AuditEvent.chain_seq).between(first_seq, last_seq), *every_filter)
        if key is not None:
            members = members.where(or_(at < key[0], and_(at == key[0], id_ < key[1])) if down
                                    else or_(at > key[0], and_(at == key[0], id_ > key[1])))
        order = (at.desc(), id_.desc()) if down else (at.asc(), id_.asc())
        rows += [(when, int(i)) for when, i in session.execute(members.order_by(*order).limit(need)).all()]
    if boundary is not None:
        rows = [k for k in rows if (k > boundary) == down]
    return sorted(rows, reverse=down)[:need]


def _audit_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """An audit cursor (ISO time, id) as the columns' values; 400 when damaged."""
    try:
        return (datetime.fromisoformat(str(key[0])), int(key[1]))
    except (ValueError, IndexError) as exc:
        raise HTTPException(400, "翻页位置无效，请从第一页重新翻页 / bad page cursor: start again from page 1") from exc


def _day(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(datetime.strptime(value, "%Y-%m-%d").date(), time(), tzinfo=SHANGHAI)
    except ValueError as exc:
        raise HTTPException(400, f"日期格式应为 YYYY-MM-DD：{value}") from exc


def audit(request: Request) -> Response:
    """The audit trail, newest first, page by page: filter by program, entity (and its id), user and date.

    Not counted: an audit trail grows without bound, so the pager only knows whether a next page exists.
    """
    ctx = web(request)
    user = require_user(request, ctx.engine)
    q = {k: (request.query_params.get(k) or "").strip() for k in ("program", "entity", "entity_id", "actor",
                                                                  "since", "until")}
    pager = page_of("/audit", request.query_params, q, keyset=True)
    with Session(ctx.engine) as session:
        programs = session.exec(select(Program).order_by(col(Program.slug))).all()
        typed = q["actor"]
        if q["actor"]:  # staff type the name they read (李审核), the trail keeps the login
            q["actor"] = session.exec(select(User.name).where(
                or_(col(User.name) == q["actor"], col(User.display_name) == q["actor"]))).first() or q["actor"]
        order = [col(AuditEvent.at), col(AuditEvent.id)]
        if fmt := export_format(request):  # every row of the filter, streamed a chunk (read by key) at a time
            def cells(chunk: list[AuditEvent]) -> list[tuple[str, ...]]:
                with Session(ctx.engine) as names_session:
                    return [r.cells() for r in _audit_rows(names_session, chunk)]

            # The filter indexes hold no bulk link's rows (migration 0035): an export, which reads every row of
            # the filter anyway, walks the time index (or one entity's) and compares the filters as it goes.
            ids = _program_ids(session, q["program"]) if q["program"] else []
            exported = select(AuditEvent).where(*_audit_filters(q, ids, scope=audit_scope(user), hide=True))
            return stream(fmt, "审计日志", "审计日志", AUDIT_COLUMNS,
                          (cells(chunk) for chunk in _chunks(ctx.engine, exported, order,
                                                             lambda e: (e.at, int(e.id or 0)), descending=True)),
                          ctx.clock.today())
        fetched = audit_page_rows(session, user, q, pager)
        events = in_order(fetched, pager)
        pager = pager.keyed([(e.at.isoformat(), int(e.id or 0)) for e in events], len(fetched))
        rows = _audit_rows(session, events)
    entities = dict(AUDIT_ENTITY_LABELS)
    if q["entity"] and q["entity"] not in entities:
        entities[q["entity"]] = q["entity"]
    return page(request, "audit.html", user, events=rows, q=q, typed_actor=typed, programs=programs,
                entities=entities, pager=pager)


AUDIT_COLUMNS = ("时间", "对象", "操作", "状态变化", "操作人", "理由")


@dataclass(frozen=True)
class AuditRow:
    """An audit row as people read it: what was acted on by name, who by name, the reason in Chinese."""

    event: AuditEvent
    name: str  # the institution of an application, a gate's title, ... ('' when the row is gone or unnamed)
    actor: str  # 王科长（和平区医疗保障局）, 系统

    @property
    def what(self) -> str:
        kind = AUDIT_ENTITY_LABELS.get(self.event.entity, "记录")
        counted = (self.event.data or {}).get("violations") if self.event.entity == "violation" else None
        if self.name and isinstance(counted, int):  # one row for a rule's findings of a compliance pass
            return f"{kind} · {self.name} · {counted:,} 条"
        return f"{kind} · {self.name}" if self.name else f"{kind}（第{self.event.entity_id}号）"

    @property
    def action(self) -> str:
        return AUDIT_ACTION_LABELS.get(self.event.action, "其他操作")

    @property
    def change(self) -> str:
        e = self.event
        before = entity_state_label(e.entity, e.from_state) if e.from_state else "—"
        after = entity_state_label(e.entity, e.to_state) if e.to_state else "—"
        return f"{before} → {after}"

    @property
    def reason(self) -> str:
        return reason_text(self.event.reason)

    def cells(self) -> tuple[str, ...]:
        at = self.event.at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
        return (at, self.what, self.action, self.change, self.actor, self.reason)

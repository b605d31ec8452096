"""The approval inbox and one gate: its items with their data and findings, decided one by one or in bulk.

Both pages show one page of rows at a time (web/queries.py): a city gate can hold 100,000
applications. Deciding in bulk still reaches every item: "全部批准" approves every undecided item of
the gate, not only the ones on the screen.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from flows.resume import resume_waiting_run
from models.enrollment import Gate, Institution
from models.gate_deadlines import EXPIRY_RULES
from models.gate_decisions import decided_ids, item_outcomes
from models.labels import GATE_EXPIRY_LABELS, GATE_KIND_LABELS, GATE_STATE_LABELS
from models.program import Program, User
from models.states import KIND_LABELS, GateKind, GateState, Role
from tasks.gates.deciding import decide_gate
from tasks.gates.rows import (
    BadItems,
    GateConflict,
    GateError,
    GateNotOpen,
    NotAllowedToDecide,
    NotYourDistrict,
    UnknownGate,
    check_decider,
)
from web import bulk_confirm, gate_details, gate_exports
from web.auth import DECIDERS, form_ids, may_view_gate, posted_form, require_user
from web.exports import EXPORT_MAX, download, export_format, stream
from web.pagination import page_of
from web.queries import ITEM_FILTERS, GateSummary, ItemKey, ItemSeek, gate_summary, inbox_page, item_page
from web.render import WebContext, flash, page, web

log = logging.getLogger(__name__)


def may_decide(user: User, gate: GateSummary) -> bool:
    """tasks.gates.rows.check_decider's rule, on a summary: the gate's role, and for district gates its district."""
    return (gate.state == GateState.OPEN and user.role == gate.decider_role
            and (gate.district is None or gate.district in user.districts))


def may_view(user: User, gate: GateSummary) -> bool:
    if user.role == Role.DISTRICT_REVIEWER:
        return gate.district is not None and gate.district in user.districts
    return user.role in (Role.PROGRAM_MANAGER, Role.OBSERVER)


def inbox(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    q = {k: (request.query_params.get(k) or "").strip() for k in ("program", "district", "kind")}
    if q["kind"] and q["kind"] not in GateKind.__members__.values():
        raise HTTPException(400, f"未知的审批事项类型：{q['kind']}")
    pager = page_of("/inbox", request.query_params, q)
    fmt = export_format(request)
    with Session(ctx.engine) as session:
        gates, total = inbox_page(session, user, ctx.clock.today(), program=q["program"] or None,
                                  district=q["district"] or None, kind=q["kind"] or None,
                                  offset=0 if fmt else pager.offset, limit=EXPORT_MAX if fmt else pager.per_page)
        programs = session.exec(select(Program).order_by(Program.slug)).all()  # type: ignore[arg-type]
    if fmt:
        return download(fmt, "待我审批", "待我审批的事项", gate_exports.INBOX_COLUMNS,
                        [gate_exports.inbox_cells(g) for g in gates], ctx.clock.today())
    return page(request, "inbox.html", user, gates=gates, pager=pager.counted(total), q=q, programs=programs,
                kind_labels=GATE_KIND_LABELS, can_decide=[may_decide(user, g) for g in gates])


def _summary_or_404(ctx: WebContext, session: Session, gate_id: int) -> GateSummary:
    gate = gate_summary(session, gate_id, ctx.clock.today())
    if gate is None:
        raise HTTPException(404, f"没有编号为 {gate_id} 的审批事项")
    return gate


def gate_detail(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    gate_id = int(request.path_params["gate_id"])
    show = request.query_params.get("show") or "all"
    if show not in ITEM_FILTERS:
        raise HTTPException(400, f"未知的筛选条件：{show}")
    # Read by key (下一页 carries the last row's position in the gate's list); "all" also by any page number,
    # a slice of the parsed list. The filters' deep pages only by key: each page walks on from its cursor.
    pager = page_of(f"/gates/{gate_id}", request.query_params, {"show": show if show != "all" else ""}, keyset=True,
                    deep_numbers=show == "all")
    context: dict[str, Any] = {}
    with Session(ctx.engine) as session:
        gate = _summary_or_404(ctx, session, gate_id)
        if not may_view(user, gate):
            raise HTTPException(403, f"您无权查看审批事项 {gate.id}（{gate.district or '市级'}）")
        who = ctx.templates.env.filters["actor"]
        if (fmt := export_format(request)) and gate.is_application_gate:  # every matching item, streamed by key
            chunks = gate_exports.application_chunks(ctx.engine, gate, show, ctx.gate_items, who)  # type: ignore[arg-type]
            return stream(fmt, f"审批事项{gate.id}", gate.title, gate_exports.ITEM_COLUMNS, chunks, ctx.clock.today())
        if gate.is_application_gate:
            where = ItemSeek(offset=0 if pager.seek else pager.offset, after=_item_key(pager.after),
                             before=_item_key(pager.before), last=pager.last)
            found = item_page(session, gate, show=show, where=where, limit=pager.per_page,  # type: ignore[arg-type]
                              cache=ctx.gate_items)
            pager = (pager.counted(found.total) if found.total is not None else pager).keyed(found.keys, found.fetched)
            parent_ids = {it.institution.proxy_parent_id for it in found.items if it.institution.proxy_parent_id}
            parents = dict(session.execute(select(Institution.id, Institution.name)  # 代采 by name, not by id
                                           .where(col(Institution.id).in_(parent_ids))).tuples().all()) if parent_ids else {}
            context.update(items=found.items, parents=parents, kind_labels={k.value: v for k, v in KIND_LABELS.items()})
        else:
            full = session.get(Gate, gate_id)
            assert full is not None
            outcomes: dict[str, Any] = item_outcomes(full.decision)
            context.update(outcomes=outcomes, item_ids=list(full.items))
            if gate.kind == GateKind.DECLARATION_REVIEW:
                context["declarations"] = [d for d in (gate_details.declaration_detail(
                    session, i, ctx.clock.today(), outcomes) for i in full.items) if d is not None]
            elif gate.kind == GateKind.LIST_APPROVAL:
                program = session.get(Program, gate.program_id)
                assert program is not None
                decided = (gate_details.decided_list_approval_detail(session, program, gate.natural_key)
                           if gate.state != GateState.OPEN else None)
                detail = decided or gate_details.list_approval_detail(session, program, gate.natural_key)
                pager = pager.counted(len(detail.changes))
                context.update(listing=detail, changes=detail.changes[pager.offset:pager.offset + pager.per_page])
            elif gate.kind == GateKind.ENFORCEMENT:
                from tasks.enforcement.views import ladder_rows

                context["ladders"] = ladder_rows(session, gate.program_id, "", case_ids=list(full.items))
            elif gate.kind == GateKind.ALLIANCE_CONFIRMATION:
                context["invitations"] = gate_details.alliance_detail(session, gate.program_id, list(full.items),
                                                                      outcomes)
            else:  # an enterprise's exit, a batch: each item by its name
                context["named"] = bulk_confirm.item_names(session, full, list(full.items), limit=None)
            if fmt:
                columns, rows = _export_rows(gate, context, who)
                return download(fmt, f"审批事项{gate.id}", gate.title, columns, rows, ctx.clock.today())
    expiry = GATE_EXPIRY_LABELS[EXPIRY_RULES[gate.kind].value]
    return page(request, "gate.html", user, gate=gate, can_decide=may_decide(user, gate), pager=pager, show=show,
                expiry=expiry,
                filters=ITEM_FILTERS, kind_labels_gate=GATE_KIND_LABELS, state_labels=GATE_STATE_LABELS, **context)


def _item_key(key: tuple[object, ...] | None) -> ItemKey | None:
    """A gate-items cursor ((position, id), or (id,) for approved / rejected) as integers; 400 when damaged."""
    if key is None:
        return None
    try:
        return tuple(int(str(v)) for v in key)
    except ValueError as exc:
        raise HTTPException(400, "翻页位置无效，请从第一页重新翻页 / bad page cursor: start again from page 1") from exc


def _export_rows(gate: GateSummary, context: dict[str, Any],
                 who: Callable[[str], str]) -> tuple[tuple[str, ...], list[tuple[object, ...]]]:
    """The columns and rows of a gate that is not an application review: what its section of gate.html shows."""
    outcomes: dict[str, Any] = context["outcomes"]
    if "declarations" in context:
        return gate_exports.DECLARATION_COLUMNS, gate_exports.declaration_rows(context["declarations"], who)
    if "listing" in context:
        decided = next(iter(outcomes.values()), None)
        return gate_exports.LIST_CHANGE_COLUMNS, gate_exports.list_approval_rows(context["listing"], decided, who)
    if "invitations" in context:
        return gate_exports.ALLIANCE_COLUMNS, gate_exports.alliance_rows(context["invitations"], who)
    if "ladders" in context:
        return gate_exports.LADDER_COLUMNS, gate_exports.ladder_export_rows(context["ladders"], outcomes, who)
    return gate_exports.OTHER_COLUMNS, gate_exports.other_rows(context["named"], context["item_ids"], outcomes, who)


def _ids(values: list[Any]) -> list[int]:
    return form_ids(values, "事项编号")


def _choices(gate: Gate, form: FormData) -> tuple[list[int], list[int], dict[int, str], str | None]:
    """Approve / reject lists and reasons from the form.

    `bulk=approve|reject`: every undecided item of the gate (all pages); `bulk=approve_page|reject_page`:
    the undecided items listed on the submitted page (`page_item`); otherwise `item_<id>` radios with
    optional `reason_<id>`. Items already decided are left out of bulk choices; naming one in a radio is
    refused by decide_gate with a message.
    """
    decided = decided_ids(gate.decision)
    reason = str(form.get("reason") or "").strip() or None
    bulk = form.get("bulk")
    if bulk in ("approve", "reject"):
        undecided = [i for i in gate.items if i not in decided]
        return (undecided, [], {}, reason) if bulk == "approve" else ([], undecided, {}, reason)
    if bulk in ("approve_page", "reject_page"):
        listed = [i for i in _ids(form.getlist("page_item")) if i not in decided]
        return (listed, [], {}, reason) if bulk == "approve_page" else ([], listed, {}, reason)
    approve: list[int] = []
    reject: list[int] = []
    reasons: dict[int, str] = {}
    for key, value in form.multi_items():
        if key.startswith("item_") and value in ("approve", "reject"):
            (approve if value == "approve" else reject).append(_ids([key.removeprefix("item_")])[0])
        elif key.startswith("reason_") and str(value).strip():
            reasons[_ids([key.removeprefix("reason_")])[0]] = str(value).strip()
    return approve, reject, reasons, reason


def _gate_or_404(ctx: WebContext, gate_id: int) -> Gate:
    with Session(ctx.engine) as session:
        gate = session.get(Gate, gate_id)
    if gate is None:
        raise HTTPException(404, f"没有编号为 {gate_id} 的审批事项")
    return gate


def _decide(ctx: WebContext, gate: Gate, user: User, form: FormData) -> str:
    """Record the decision and wake the waiting run; errors become pages with the bilingual message."""
    approve, reject, reasons, reason = _choices(gate, form)
    assert gate.id is not None
    try:
        result = decide_gate(ctx.engine, gate.id, approve=approve, reject=reject, reason=reason, reasons=reasons,
                             user_name=user.name, clock=ctx.clock,
                             options={"bad_record": form.get("bad_record") == "1"})  # an enterprise's disqualification
    except (NotYourDistrict, NotAllowedToDecide) as exc:
        raise HTTPException(403, str(exc)) from exc
    except UnknownGate as exc:
        raise HTTPException(404, str(exc)) from exc
    except GateConflict as exc:
        raise HTTPException(409, str(exc)) from exc
    resumed = resume_waiting_run(result, user.name)
    log.info("gate %s decided by %s: %s", gate.id, user.name, resumed)  # the engineer's words go to the log
    rest = f"，尚余 {len(result.undecided)} 项待决定" if result.undecided else ""
    return f"「{gate.title}」已决定：批准 {len(result.approved)} 项，驳回 {len(result.rejected)} 项{rest}。{_plain(resumed)}"


def _plain(resumed: str) -> str:
    """What a reviewer needs to know of the waiting run: flows/resume.py speaks to engineers, in two languages."""
    if any(word in resumed for word in ("已唤醒", "已重新排队", "即将运行", "已启动新的运行")):
        return "后续处理已自动继续。"
    return "决定已保存，系统将在下一次例行处理时继续后续工作。"


def person_error(exc: GateError) -> str:
    """A refused decision in one plain Chinese sentence: the Chinese half of the message, without bracketed ids.

    The engine's messages name item ids for the CLI ("驳回必须说明理由 / … (items [1053])"); on a page the
    reviewer sees the rows themselves, so the ids are left out.
    """
    if isinstance(exc, BadItems) and "理由" in str(exc):
        return "驳回必须说明理由：请为每个驳回的事项填写理由，或在批量驳回时填写统一理由。"
    if isinstance(exc, GateNotOpen):
        return f"该审批事项{GATE_STATE_LABELS.get(exc.state, '已关闭')}，不能再决定；请刷新页面查看结果。"
    if isinstance(exc, BadItems) and "没有要决定的事项" in str(exc):
        return "没有选择要决定的事项：请逐项选择“批准”或“驳回”，或使用批量按钮。"
    text = str(exc).split(" / ")[0]
    return re.sub(r"\s*[\[(（][\d,\s]+[\])）]", "", text).strip() + ("" if text.endswith("。") else "。")


async def decide(request: Request) -> Response:
    ctx = web(request)
    user, form = await posted_form(request, ctx.engine, *DECIDERS)
    gate = await run_in_threadpool(_gate_or_404, ctx, int(request.path_params["gate_id"]))
    if not may_view_gate(user, gate):
        raise HTTPException(403, f"您无权决定审批事项 {gate.id}（{gate.district or '市级'}）")
    back = str(form.get("back") or "")
    back = back if back.startswith(f"/gates/{gate.id}") else f"/gates/{gate.id}"
    if bulk_confirm.wants_confirmation(form) and gate.state == GateState.OPEN:  # no script asked: this page names the count and the items
        try:
            check_decider(user, gate)
        except GateError as exc:
            raise HTTPException(403, str(exc)) from exc
        if (refusal := _unconfirmable(form)) is not None:
            flash(request, refusal, error=True)
            return RedirectResponse(back, status_code=303)
        choices = await run_in_threadpool(_gate_choices, ctx, [gate], form)
        return page(request, "confirm.html", user, **bulk_confirm.context(form, choices, f"/gates/{gate.id}/decide",
                                                                          back))
    try:
        message = await run_in_threadpool(_decide, ctx, gate, user, form)
    except GateError as exc:  # BadItems, GateNotOpen: say what is wrong on the gate's page, as an error
        flash(request, person_error(exc), error=True)
    else:
        flash(request, message)
    return RedirectResponse(back, status_code=303)


def _unconfirmable(form: FormData) -> str | None:
    """A bulk rejection without its reason is refused before asking to confirm it (decide_gate would refuse it)."""
    if bulk_confirm.verb(form) == "驳回" and not str(form.get("reason") or "").strip():
        return "驳回必须说明理由：请为每个驳回的事项填写理由，或在批量驳回时填写统一理由。"
    return None


def _gate_choices(ctx: WebContext, gates: list[Gate], form: FormData) -> list[bulk_confirm.GateChoice]:
    with Session(ctx.engine) as session:
        return [bulk_confirm.choice(session, g, form) for g in gates]


async def decide_many(request: Request) -> Response:
    """Bulk from the inbox: every undecided item of each chosen gate approved (or rejected with one reason)."""
    ctx = web(request)
    user, form = await posted_form(request, ctx.engine, *DECIDERS)
    gates = [await run_in_threadpool(_gate_or_404, ctx, i) for i in _ids(form.getlist("gate"))]
    for gate in gates:  # all or nothing on authority, before anything else: one foreign gate refuses the request
        try:
            check_decider(user, gate)
        except GateError as exc:
            raise HTTPException(403, str(exc)) from exc
    if form.get("bulk") not in ("approve", "reject"):
        raise HTTPException(400, "请选择“全部批准”或“全部驳回”")
    back = str(form.get("back") or "")
    back = back if back.startswith("/inbox") else "/inbox"
    if any(g.state == GateState.OPEN for g in gates) and bulk_confirm.wants_confirmation(form):  # no script asked: this page names the count and the items
        if (refusal := _unconfirmable(form)) is not None:
            flash(request, refusal, error=True)
            return RedirectResponse(back, status_code=303)
        choices = await run_in_threadpool(_gate_choices, ctx, gates, form)
        return page(request, "confirm.html", user, **bulk_confirm.context(form, choices, "/inbox/decide", back))
    messages, failed = [], False
    for gate in gates:
        try:
            messages.append(await run_in_threadpool(_decide, ctx, gate, user, form))
        except GateError as exc:
            messages.append(f"「{gate.title}」未能决定：{person_error(exc)}")
            failed = True
    flash(request, "；".join(messages) or "未选择审批事项", error=failed or not messages)
    return RedirectResponse(back, status_code=303)

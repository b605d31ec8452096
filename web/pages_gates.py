"""The approval inbox and one gate: its items with their data and findings, decided one by one or in bulk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from models.enrollment import Application, Gate, Institution, Review
from models.program import Program, User
from models.program_definition import ProgramDefinition
from models.states import KIND_LABELS, GateKind, GateState, InstitutionKind
from sanjin.resume import resume_waiting_run
from tasks.calendar import working_days_for
from tasks.gates import (
    GateConflict,
    GateError,
    NotAllowedToDecide,
    NotYourDistrict,
    UnknownGate,
    check_decider,
    decide_gate,
    list_gates,
)
from web.auth import DECIDERS, check_csrf, may_view_gate, require_role, require_user
from web.render import WebContext, flash, page, web

APPLICATION_GATES = (GateKind.DISTRICT_REVIEW, GateKind.CITY_REVIEW)


@dataclass(frozen=True)
class InboxItem:
    gate: Gate
    program: Program
    due_in: int  # working days from today to the due date; negative when overdue


def _due_in(defn: ProgramDefinition, today: date, due_on: date) -> int:
    return working_days_for(defn).working_days_between(today, due_on)


def waiting_on(ctx: WebContext, user: User) -> list[InboxItem]:
    """Open gates this user may decide, soonest due first."""
    mine = []
    for gate in list_gates(ctx.engine):
        try:
            check_decider(user, gate)
        except GateError:
            continue
        mine.append(gate)
    with Session(ctx.engine) as session:
        programs = {p.id: p for p in session.exec(select(Program)).all()}
    defs = {pid: ProgramDefinition.model_validate(p.definition) for pid, p in programs.items()}
    today = ctx.clock.today()
    return [InboxItem(g, programs[g.program_id], _due_in(defs[g.program_id], today, g.due_on)) for g in mine]


def inbox(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    return page(request, "inbox.html", user, items=waiting_on(ctx, user))


def _gate_or_404(ctx: WebContext, gate_id: int) -> Gate:
    with Session(ctx.engine) as session:
        gate = session.get(Gate, gate_id)
    if gate is None:
        raise HTTPException(404, f"没有编号为 {gate_id} 的审批事项")
    return gate


def gate_items(ctx: WebContext, gate: Gate) -> list[dict[str, Any]]:
    """Each item with what a reviewer decides on: the application, its institution and its findings."""
    outcomes: dict[str, Any] = gate.decision.get("items", {})
    rows: dict[int, dict[str, Any]] = {i: {"id": i, "outcome": outcomes.get(str(i))} for i in gate.items}
    if gate.kind in APPLICATION_GATES and gate.items:
        with Session(ctx.engine) as session:
            found = session.exec(select(Application, Institution).join(
                Institution, Institution.id == Application.institution_id).where(  # type: ignore[arg-type]
                Application.id.in_(gate.items))).all()  # type: ignore[union-attr]
            reviews = session.exec(select(Review).where(col(Review.application_id).in_(gate.items))
                                   .order_by(col(Review.id))).all()
        for app, inst in found:
            assert app.id is not None
            rows[app.id].update(application=app, institution=inst, reviews=[],
                                kind=KIND_LABELS.get(InstitutionKind(inst.kind), str(inst.kind)))
        for review in reviews:  # earlier levels' opinions (the district's, on a city gate)
            if review.gate_id != gate.id:
                rows[review.application_id]["reviews"].append(review)
    return [rows[i] for i in gate.items]


def gate_detail(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    gate = _gate_or_404(ctx, int(request.path_params["gate_id"]))
    if not may_view_gate(user, gate):
        raise HTTPException(403, f"您无权查看审批事项 {gate.id}（{gate.district or '市级'}）")
    can_decide = gate.state == GateState.OPEN
    try:
        check_decider(user, gate)
    except GateError:
        can_decide = False
    with Session(ctx.engine) as session:
        program = session.get(Program, gate.program_id)
    assert program is not None
    due_in = _due_in(ProgramDefinition.model_validate(program.definition), ctx.clock.today(), gate.due_on)
    return page(request, "gate.html", user, gate=gate, program=program, items=gate_items(ctx, gate),
                can_decide=can_decide, due_in=due_in)


def _choices(gate: Gate, form: FormData) -> tuple[list[int], list[int], dict[int, str], str | None]:
    """Approve / reject lists and reasons from the form: `bulk` for every undecided item, else `item_<id>`."""
    decided = {int(k) for k in gate.decision.get("items", {})}
    undecided = [i for i in gate.items if i not in decided]
    reason = str(form.get("reason") or "").strip() or None
    bulk = form.get("bulk")
    if bulk == "approve":
        return undecided, [], {}, reason
    if bulk == "reject":
        return [], undecided, {}, reason
    approve, reject, reasons = [], [], {}
    for i in undecided:
        choice = form.get(f"item_{i}")
        item_reason = str(form.get(f"reason_{i}") or "").strip()
        if choice == "approve":
            approve.append(i)
        elif choice == "reject":
            reject.append(i)
        if item_reason:
            reasons[i] = item_reason
    return approve, reject, reasons, reason


def _decide(ctx: WebContext, gate: Gate, user: User, form: FormData) -> str:
    """Record the decision and wake the waiting run; errors become pages with the bilingual message."""
    approve, reject, reasons, reason = _choices(gate, form)
    assert gate.id is not None
    try:
        result = decide_gate(ctx.engine, gate.id, approve=approve, reject=reject, reason=reason, reasons=reasons,
                             user_name=user.name, clock=ctx.clock)
    except (NotYourDistrict, NotAllowedToDecide) as exc:
        raise HTTPException(403, str(exc)) from exc
    except UnknownGate as exc:
        raise HTTPException(404, str(exc)) from exc
    except GateConflict as exc:
        raise HTTPException(409, str(exc)) from exc
    resumed = resume_waiting_run(result, user.name)
    return f"审批事项 {gate.id}：批准 {len(result.approved)} 项，驳回 {len(result.rejected)} 项。{resumed}"


async def decide(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    form = await request.form()
    check_csrf(request, form)
    require_role(user, *DECIDERS)
    gate = _gate_or_404(ctx, int(request.path_params["gate_id"]))
    try:
        message = await run_in_threadpool(_decide, ctx, gate, user, form)
    except GateError as exc:  # BadItems, GateNotOpen: say what is wrong on the gate's page
        message = str(exc)
    flash(request, message)
    return RedirectResponse(f"/gates/{gate.id}", status_code=303)


async def decide_many(request: Request) -> Response:
    """Bulk from the inbox: every undecided item of each chosen gate approved (or rejected with one reason)."""
    ctx = web(request)
    user = require_user(request, ctx.engine)
    form = await request.form()
    check_csrf(request, form)
    require_role(user, *DECIDERS)
    gates = [_gate_or_404(ctx, int(str(v))) for v in form.getlist("gate")]
    for gate in gates:  # all or nothing on authority: one foreign gate refuses the whole request
        try:
            check_decider(user, gate)
        except GateError as exc:
            raise HTTPException(403, str(exc)) from exc
    messages = []
    for gate in gates:
        try:
            messages.append(await run_in_threadpool(_decide, ctx, gate, user, form))
        except GateError as exc:
            messages.append(str(exc))
    flash(request, "；".join(messages) or "未选择审批事项")
    return RedirectResponse("/inbox", status_code=303)

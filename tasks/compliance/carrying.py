"""Finding queries for what running institutions carry: drug count, recommended share, special drugs, early exit.

The rules themselves are `models.compliance.selection` and `.participation`; drugs are counted by generic name
(产品名称, "按药品通用名统计", seed 002 §五) over the selections the institution still holds — its own and, for a
proxy-procured (代采) clinic, its upper institution's; a selection that has ended is no longer carried.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Integer, and_, case, cast, func, literal, or_, select, union_all
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select

from models.catalog import DeclarationItem, EnterpriseDeclaration, Product
from models.clock import local_date
from models.compliance.codes import SubjectType
from models.compliance.participation import earliest_exit
from models.enrollment import Application, Batch, Institution
from models.operations import Selection
from models.states import ApplicationState, DeclarationState, InstitutionCategory
from tasks.compliance.context import PassContext
from tasks.compliance.sql import basis_points, evidence, kinds_of, text_of

APP = Application.__table__  # type: ignore[attr-defined]
BATCH = Batch.__table__  # type: ignore[attr-defined]
INST = Institution.__table__  # type: ignore[attr-defined]
SEL = Selection.__table__  # type: ignore[attr-defined]
PROD = Product.__table__  # type: ignore[attr-defined]
DI = DeclarationItem.__table__  # type: ignore[attr-defined]
DECL = EnterpriseDeclaration.__table__  # type: ignore[attr-defined]

PRIVATE = kinds_of(InstitutionCategory.PRIVATE_MEDICAL)
PHARMACY = kinds_of(InstitutionCategory.RETAIL_PHARMACY)


def _running(ctx: PassContext, grace: bool) -> Any:
    """Running applications of the program (past the grace period after their batch started, if asked)."""
    where = [APP.c.program_id == ctx.program_id, APP.c.state == ApplicationState.RUNNING.value]
    if grace:
        where.append(BATCH.c.running_at <= ctx.now - timedelta(days=ctx.rules.selection_grace_days))
    return APP.join(BATCH, BATCH.c.id == APP.c.batch_id).join(INST, INST.c.id == APP.c.institution_id), where


def _holding(ctx: PassContext) -> ColumnElement[bool]:
    """A selection still held today: one that ended (its enterprise left, its product was removed) is not carried."""
    return or_(SEL.c.ended_on.is_(None), SEL.c.ended_on > ctx.today)


def _carriers() -> Any:
    """(institution, buyer) pairs: each institution buys for itself, and a proxy-procured one also through its parent.

    Seed 001 §二(二)1: "实现一体化管理的村卫生室和社区卫生服务站，由乡镇卫生院或社区卫生服务中心统一负责集采药品的报量、采购、
    配送和管理" (000 §一(四) likewise: 代乡镇卫生院、社区卫生服务中心/站、村卫生室等代采购). A proxy-procured clinic carries
    what its upper institution buys for it, so it is not judged as if it purchased alone.
    """
    own = select(INST.c.id.label("institution_id"), INST.c.id.label("buyer_id"))
    through_parent = select(INST.c.id, INST.c.proxy_parent_id).where(INST.c.proxy_parent_id.is_not(None))
    return union_all(own, through_parent).subquery("carriers")


def _counts(ctx: PassContext) -> Any:
    """Distinct generic names carried per institution (held selections, its own and its proxy parent's)."""
    recommended = (select(DI.c.product_id).join(DECL, DECL.c.id == DI.c.declaration_id)
                   .where(DECL.c.program_id == ctx.program_id, DECL.c.state == DeclarationState.ACCEPTED.value,
                          DI.c.recommended.is_(True)))
    carriers = _carriers()
    return (select(carriers.c.institution_id, func.count(PROD.c.name.distinct()).label("total"),
                   func.count(case((PROD.c.id.in_(recommended), PROD.c.name)).distinct()).label("rec"))
            .select_from(carriers.join(SEL, SEL.c.institution_id == carriers.c.buyer_id)
                         .join(PROD, PROD.c.id == SEL.c.product_id))
            .where(SEL.c.program_id == ctx.program_id, _holding(ctx))
            .group_by(carriers.c.institution_id).subquery("counts"))


def _floor(ctx: PassContext) -> ColumnElement[Any]:
    floors = ctx.rules.min_drug_count
    whens: list[Any] = []
    if floors.private_tertiary is not None:
        whens.append((and_(INST.c.kind.in_(PRIVATE), INST.c.private_tertiary.is_(True)), floors.private_tertiary))
    if floors.private_other is not None:
        whens.append((and_(INST.c.kind.in_(PRIVATE), INST.c.private_tertiary.is_(False)), floors.private_other))
    if floors.pharmacy is not None:
        whens.append((INST.c.kind.in_(PHARMACY), floors.pharmacy))
    return case(*whens, else_=literal(None, Integer)) if whens else literal(None, Integer)


def too_few_drugs(ctx: PassContext) -> Select[Any]:
    """Running institutions carrying fewer drugs than their kind's floor or their own commitment."""
    counts = _counts(ctx)
    floor = _floor(ctx)
    if ctx.rules.min_drug_count.use_committed_count:
        committed = func.nullif(APP.c.committed_drug_count, 0)
        required: ColumnElement[Any] = case((floor.is_(None), committed), (committed > floor, committed), else_=floor)
    else:
        required = floor
    carried = func.coalesce(counts.c.total, 0)
    joined, where = _running(ctx, grace=True)
    return (
        select(literal(SubjectType.INSTITUTION.value), APP.c.institution_id, literal(""), INST.c.district,
               evidence({"配备品种数": carried, "应配备品种数": required, "承诺品种数": APP.c.committed_drug_count}),
               literal(None))
        .select_from(joined.outerjoin(counts, counts.c.institution_id == APP.c.institution_id))
        .where(*where, required.is_not(None), carried < required)
    )


def recommended_shares(ctx: PassContext) -> Select[Any]:
    """Running institutions whose share of drugs from the recommended list is below the program's minimum."""
    share = ctx.rules.recommended_share_min
    counts = _counts(ctx)
    joined, where = _running(ctx, grace=True)
    bp = basis_points(share) if share is not None else 0
    return (
        select(literal(SubjectType.INSTITUTION.value), APP.c.institution_id, literal(""), INST.c.district,
               evidence({"推荐品种数": counts.c.rec, "配备品种数": counts.c.total, "最低占比(万分比)": bp}),
               literal(None))
        .select_from(joined.join(counts, counts.c.institution_id == APP.c.institution_id))
        .where(*where, literal(share is not None), counts.c.total > 0,
               cast(counts.c.rec, Integer) * 10000 < counts.c.total * bp)
    )


def special_drugs(ctx: PassContext) -> Select[Any]:
    """Special drugs (特药) selected by institutions without the special-drug designation."""
    return (
        select(literal(SubjectType.INSTITUTION.value), SEL.c.institution_id, PROD.c.drug_code, INST.c.district,
               evidence({"药品统一编码": PROD.c.drug_code, "产品名称": PROD.c.name}),
               literal(None))
        .join(PROD, PROD.c.id == SEL.c.product_id)
        .join(INST, INST.c.id == SEL.c.institution_id)
        .where(literal(bool(ctx.rules.special_drugs_need_designation)), SEL.c.program_id == ctx.program_id,
               _holding(ctx), PROD.c.is_special.is_(True), INST.c.special_designated.is_(False))
    )


def early_exits(ctx: PassContext, conn: Connection) -> Select[Any]:
    """Institutions that left before the minimum participation, counted from their batch's start."""
    years = ctx.rules.min_participation_years
    batches = conn.execute(select(BATCH.c.id, BATCH.c.running_at).where(
        BATCH.c.program_id == ctx.program_id, BATCH.c.running_at.is_not(None))).all()
    earliest = {bid: earliest_exit(local_date(at), years) for bid, at in batches}
    may_leave = (case(*((APP.c.batch_id == bid, literal(d)) for bid, d in earliest.items()))
                 if earliest else literal(None))
    left = [ApplicationState.WITHDRAWN.value, ApplicationState.EXITED.value]
    return (
        select(literal(SubjectType.INSTITUTION.value), APP.c.institution_id, literal(""), INST.c.district,
               evidence({"退出日期": text_of(APP.c.left_on), "最早可退出日期": text_of(may_leave), "年限": years}),
               literal(None))
        .join(INST, INST.c.id == APP.c.institution_id)
        .where(APP.c.program_id == ctx.program_id, APP.c.state.in_(left), APP.c.left_on.is_not(None),
               APP.c.left_on < may_leave)
    )

"""Facts the rules read, derived from the imported rows in bulk: when each order was complete, and the payables.

Re-running changes nothing: each statement writes only rows whose derived value differs.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    case,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)

from models.calendar import due_columns
from models.compliance.payment import payment_due_on
from models.operations import Delivery, Payment, PurchaseOrder, Settlement
from models.workdays import WorkingDays, fixed_deadline
from tasks.compliance.sql import cents, refresh_statistics

ORDER = PurchaseOrder.__table__  # type: ignore[attr-defined]
DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
PAYMENT = Payment.__table__  # type: ignore[attr-defined]
SETTLEMENT = Settlement.__table__  # type: ignore[attr-defined]


def refresh_order_completion(conn: Connection, program_id: int) -> int:
    """Set each order's `delivered_at` (when accepted quantity reached the ordered one) and `accepted_on`.

    Only orders with a delivery the pass has not seen yet are recomputed: every delivery gets its payable in
    the same pass (`refresh_payables`, right after this), and deliveries are only ever added (imports skip
    rows already stored), so an order whose deliveries all have payables keeps the values computed for them.
    """
    changed = select(DELIVERY.c.order_id).where(~exists().where(PAYMENT.c.delivery_id == DELIVERY.c.id))
    running = (
        select(DELIVERY.c.order_id, DELIVERY.c.arrived_at, DELIVERY.c.accepted_on, ORDER.c.quantity,
               # (order_id, arrived_at) is unique: no tiebreak needed, and SQLite can follow that index
               func.sum(DELIVERY.c.quantity).over(partition_by=DELIVERY.c.order_id,
                                                  order_by=DELIVERY.c.arrived_at).label("cum"))
        .join(ORDER, ORDER.c.id == DELIVERY.c.order_id)
        .where(ORDER.c.program_id == program_id, DELIVERY.c.order_id.in_(changed))
        .subquery("running")
    )
    done = (
        select(running.c.order_id,
               func.min(case((running.c.cum >= running.c.quantity, running.c.arrived_at))).label("done_at"),
               func.max(running.c.accepted_on).label("last_accepted"))
        .group_by(running.c.order_id)
        .subquery("done")
    )
    stmt = (
        update(ORDER)
        .values(delivered_at=done.c.done_at, accepted_on=done.c.last_accepted)
        .where(ORDER.c.id == done.c.order_id,
               ORDER.c.delivered_at.is_distinct_from(done.c.done_at)
               | ORDER.c.accepted_on.is_distinct_from(done.c.last_accepted))
    )
    changed_orders = int(conn.execute(stmt).rowcount)
    refresh_statistics(conn, changed_orders, ORDER)
    return changed_orders


_DUES = MetaData()
DUE = Table("compliance_due", _DUES, Column("accepted_on", Date, primary_key=True), Column("due_on", Date),
            Column("due_on_provisional", Boolean), Column("due_from", Date), Column("due_working_days", SmallInteger),
            prefixes=["TEMPORARY"])


def refresh_payables(conn: Connection, program_id: int, calendar: WorkingDays, *, roll_forward: bool,
                     due: str = "next_month_end") -> int:
    """One payable per accepted delivery, due at 次月底 of its acceptance; then the day payments covered each.

    Due dates need the calendar: Python maps each distinct acceptance date of the deliveries still without a
    payable (a few hundred at most) to its due date with the pure rule, into a small temporary table the one
    INSERT … SELECT joins. (A CASE with a branch per date for each of the four due columns cost ~5 s per
    100,000 payables on SQLite.)
    """
    unbilled = ~exists().where(PAYMENT.c.delivery_id == DELIVERY.c.id)
    program_deliveries = (select(DELIVERY.c.accepted_on).join(ORDER, ORDER.c.id == DELIVERY.c.order_id)
                          .where(ORDER.c.program_id == program_id, unbilled).distinct())
    accepted = [r[0] for r in conn.execute(program_deliveries)]
    created = 0
    if accepted:
        # 次月底 rolled forward into a year without an official schedule is provisional (暂定): stored with its
        # basis so entering the schedule recomputes it (tasks/calendar/schedules.py).
        plain = {d: payment_due_on(d, calendar, roll_forward=False, due=due) for d in accepted}
        deadlines = {d: calendar.deadline(end, 0) if roll_forward else fixed_deadline(end)
                     for d, end in plain.items()}
        DUE.create(conn, checkfirst=True)
        conn.execute(delete(DUE))
        conn.execute(insert(DUE), [{"accepted_on": d, **due_columns(dl)} for d, dl in deadlines.items()])
        new = (
            select(ORDER.c.id, DELIVERY.c.id, ORDER.c.institution_id,
                   func.round(DELIVERY.c.quantity * ORDER.c.unit_price, 2),
                   DUE.c.due_on, DUE.c.due_on_provisional, DUE.c.due_from, DUE.c.due_working_days)
            .select_from(DELIVERY.join(ORDER, ORDER.c.id == DELIVERY.c.order_id)
                         .join(DUE, DUE.c.accepted_on == DELIVERY.c.accepted_on))
            .where(ORDER.c.program_id == program_id, unbilled)
        )
        before = conn.execute(select(func.count()).select_from(PAYMENT)).scalar_one()
        conn.execute(insert(PAYMENT).from_select(
            ["order_id", "delivery_id", "institution_id", "amount", "due_on", "due_on_provisional", "due_from",
             "due_working_days"], new))
        # Counted, not taken from rowcount: psycopg reports -1 for some INSERT … SELECT statements.
        created = int(conn.execute(select(func.count()).select_from(PAYMENT)).scalar_one()) - int(before)
        DUE.drop(conn)
        refresh_statistics(conn, created, PAYMENT)
    _refresh_paid_on(conn, program_id)
    return created


def _refresh_paid_on(conn: Connection, program_id: int) -> None:
    """`paid_on` = the first payment date at which the order's cumulative payments cover its cumulative payables.

    The running sums go into two indexed temporary tables first: joining the two window subqueries directly
    left SQLite a nested loop over every payable × settlement (a million of each did not finish in 10 minutes).
    """
    owed = (
        select(PAYMENT.c.id, PAYMENT.c.order_id,
               func.sum(cents(PAYMENT.c.amount)).over(partition_by=PAYMENT.c.order_id,
                                                     order_by=(PAYMENT.c.due_on, PAYMENT.c.id)).label("cum_owed"))
        .join(ORDER, ORDER.c.id == PAYMENT.c.order_id)
        .where(ORDER.c.program_id == program_id)
    )
    paid = (
        select(SETTLEMENT.c.order_id, SETTLEMENT.c.paid_on,
               func.sum(cents(SETTLEMENT.c.amount)).over(
                   partition_by=SETTLEMENT.c.order_id, order_by=(SETTLEMENT.c.paid_on, SETTLEMENT.c.id)).label("cum_paid"))
        .join(ORDER, ORDER.c.id == SETTLEMENT.c.order_id)
        .where(ORDER.c.program_id == program_id)
    )
    meta = MetaData()
    owed_t = Table("compliance_owed", meta, Column("id", Integer), Column("order_id", Integer),
                   Column("cum_owed", BigInteger), prefixes=["TEMPORARY"])
    paid_t = Table("compliance_paid", meta, Column("order_id", Integer), Column("paid_on", Date),
                   Column("cum_paid", BigInteger), prefixes=["TEMPORARY"])
    Index("ix_compliance_paid_order", paid_t.c.order_id, paid_t.c.cum_paid)
    meta.create_all(conn)
    conn.execute(insert(owed_t).from_select(["id", "order_id", "cum_owed"], owed))
    conn.execute(insert(paid_t).from_select(["order_id", "paid_on", "cum_paid"], paid))
    covered = (
        select(owed_t.c.id, func.min(paid_t.c.paid_on).label("paid_on"))
        .select_from(owed_t.outerjoin(paid_t, (paid_t.c.order_id == owed_t.c.order_id)
                                      & (paid_t.c.cum_paid >= owed_t.c.cum_owed)))
        .group_by(owed_t.c.id)
        .subquery("covered")
    )
    conn.execute(
        update(PAYMENT)
        .values(paid_on=covered.c.paid_on)
        .where(PAYMENT.c.id == covered.c.id, PAYMENT.c.paid_on.is_distinct_from(covered.c.paid_on))
    )
    meta.drop_all(conn)

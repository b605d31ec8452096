"""Facts the rules read, derived from the imported rows in bulk: when each order was complete, and the payables.

Re-running changes nothing: payables are created once per delivery (on PostgreSQL, not for a delivery its order's
one settlement paid on time: `_single_payables`), and a payable's `paid_on` is written only where it differs. Only orders with something new since the last pass (a delivery without a payable, a settlement or
a payable past the program's `ComplianceMark`) are recomputed; a new payable is written once, with its `paid_on`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

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
    and_,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    type_coerce,
    union,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement, Grouping

from models.calendar import due_columns
from models.compliance.payment import payment_due_on
from models.operations import ComplianceMark, Delivery, Payment, PurchaseOrder, Settlement
from models.workdays import WorkingDays, fixed_deadline
from tasks.compliance.sql import cents, merge_joins, refresh_statistics

ORDER = PurchaseOrder.__table__  # type: ignore[attr-defined]
DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
PAYMENT = Payment.__table__  # type: ignore[attr-defined]
SETTLEMENT = Settlement.__table__  # type: ignore[attr-defined]
MARK = ComplianceMark.__table__  # type: ignore[attr-defined]

_SCRATCH = MetaData()
# Each order of the program: when its accepted quantity first reached the ordered one (NULL while short or not
# delivered), its latest acceptance date, how many deliveries it has (0: none yet), and — copied from the order —
# its enterprise and when it was placed, so the late deliveries' filter and the enterprises' pattern read this
# table alone. Derived per pass, not stored on the order: storing it made the first pass rewrite every order row
# (9 of 48 s at 100,000 lines on PostgreSQL) to save the rerun a fraction of a second.
COMPLETION = Table("compliance_completion", _SCRATCH, Column("order_id", Integer, primary_key=True),
                   Column("enterprise_id", Integer, nullable=False),
                   Column("ordered_at", ORDER.c.ordered_at.type, nullable=False),
                   Column("delivered_at", DELIVERY.c.arrived_at.type), Column("accepted_on", Date),
                   Column("deliveries", Integer, nullable=False), prefixes=["TEMPORARY"])
# PostgreSQL: the same table created without its key, which is built once the rows are in (`_key_completion`).
_COMPLETION_UNKEYED = Table(COMPLETION.name, MetaData(),
                            *(Column(c.name, c.type, nullable=c.nullable, autoincrement=False)
                              for c in COMPLETION.columns), prefixes=["TEMPORARY"])
DUE = Table("compliance_due", _SCRATCH, Column("accepted_on", Date, primary_key=True), Column("due_on", Date),
            Column("due_on_provisional", Boolean), Column("due_from", Date), Column("due_working_days", SmallInteger),
            prefixes=["TEMPORARY"])
# The payables to create (one per delivery without one), with their due dates, before they are written.
NEW = Table("compliance_new_payable", _SCRATCH, Column("delivery_id", Integer, primary_key=True),
            Column("order_id", Integer, nullable=False), Column("institution_id", Integer, nullable=False),
            Column("amount", PAYMENT.c.amount.type, nullable=False), Column("due_on", Date, nullable=False),
            Column("due_on_provisional", Boolean), Column("due_from", Date), Column("due_working_days", SmallInteger),
            prefixes=["TEMPORARY"])
CHANGED = Table("compliance_changed_order", _SCRATCH, Column("order_id", Integer, primary_key=True),
                prefixes=["TEMPORARY"])
# Running sums of what each changed order owes (stored payables, kind 0, by id; new ones, kind 1, by delivery) and
# what it has paid. Indexed temporary tables: joining the two window subqueries directly left SQLite a nested loop
# over every payable × settlement (a million of each did not finish in 10 minutes).
OWED = Table("compliance_owed", _SCRATCH, Column("kind", SmallInteger, nullable=False),
             Column("ref_id", Integer, nullable=False), Column("order_id", Integer, nullable=False),
             Column("cum_owed", BigInteger), prefixes=["TEMPORARY"])
PAID = Table("compliance_paid", _SCRATCH, Column("order_id", Integer), Column("paid_on", Date),
             Column("cum_paid", BigInteger), prefixes=["TEMPORARY"])
Index("ix_compliance_paid_order", PAID.c.order_id, PAID.c.cum_paid)
COVERED = Table("compliance_covered", _SCRATCH, Column("kind", SmallInteger, primary_key=True),
                Column("ref_id", Integer, primary_key=True), Column("paid_on", Date), prefixes=["TEMPORARY"])
_PAYABLE_TABLES = (DUE, NEW, CHANGED, OWED, PAID, COVERED)


def refresh_order_completion(conn: Connection, program_id: int) -> int:
    """Fill COMPLETION for the program's orders: when each was complete (`delivered_at`), its last acceptance date,
    its deliveries, its enterprise and order time.

    Read by the delivery rules (`supply.py`) through `COMPLETION`; dropped with the pass's other scratch tables.
    Every order has its row, delivered or not: the late deliveries' filter and the enterprises' pattern read the
    orders' time here, not each by a second scan of every order joined to this table (the pattern's statement
    0.47-0.61 → 0.15-0.17 s at 1,000,000 lines, psql, same base; building the table costs the same).
    """
    postgres = conn.dialect.name == "postgresql"
    (_COMPLETION_UNKEYED if postgres else COMPLETION).create(conn, checkfirst=True)
    conn.execute(delete(COMPLETION))
    # Grouped by the order's primary key, on which its quantity, enterprise and time depend (no second grouping
    # column): the orders and their deliveries merge in order-id order and group as they come. Grouped by
    # (delivery.order_id, quantity), PostgreSQL sorted the merged million rows again by quantity within each
    # order first (an incremental sort, ~0.13 of the statement's 1.5 s at 1,000,000 lines, EXPLAIN ANALYZE).
    per_order = (select(ORDER.c.id).select_from(ORDER.outerjoin(DELIVERY, ORDER.c.id == DELIVERY.c.order_id))
                 .where(ORDER.c.program_id == program_id).group_by(ORDER.c.id))
    if conn.dialect.name == "sqlite":
        # SQLite went in by the (program_id, order_no) key, so in order-number order, and sorted the million groups
        # into two temporary B-trees (GROUP BY, then ORDER BY). The orders in id order (`+ 0`: not that key), each
        # order's deliveries by their (order_id, …) key, group in the order they come: ~20 % less CPU.
        # (The bare columns of the order are one value per order, as on PostgreSQL.)
        per_order = (select(ORDER.c.id).select_from(ORDER.outerjoin(DELIVERY, ORDER.c.id == DELIVERY.c.order_id))
                     .where(ORDER.c.program_id + 0 == program_id).group_by(ORDER.c.id))
    delivered = func.sum(DELIVERY.c.quantity)
    # One grouping for every order: complete at its last delivery if the quantity arrived. Right for an order
    # delivered in one go, still short or not delivered, which most are.
    conn.execute(insert(COMPLETION).from_select(
        ["order_id", "enterprise_id", "ordered_at", "delivered_at", "accepted_on", "deliveries"],
        per_order.add_columns(ORDER.c.enterprise_id, ORDER.c.ordered_at,
                              case((delivered >= ORDER.c.quantity, func.max(DELIVERY.c.arrived_at))),
                              func.max(DELIVERY.c.accepted_on), func.count(DELIVERY.c.id))
        # In key order: PostgreSQL's hash aggregate hands the orders out in hash order, and a temporary table's
        # primary key filled at random through its 8 MB of local buffers took 21.6 s at 1,000,000 orders, in
        # order 7.9 s (psql, same base, same load). SQLite's grouping is in this order already. (Merge joins
        # here, `merge_joins`, measured 1.34 against 1.39-1.54 s of CPU: not kept.)
        .order_by(ORDER.c.id)))
    if postgres:
        # The key every later statement merges COMPLETION by, built from the rows in one sort (they come in its
        # order) rather than entered one by one: 0.15-0.18 s less at 1,000,000 orders (psql, same base, twice).
        conn.exec_driver_sql(f"CREATE UNIQUE INDEX IF NOT EXISTS {COMPLETION.name}_key ON {COMPLETION.name} (order_id)")
    # An order complete in parts was complete at the first delivery by which the running sum reached the ordered
    # quantity: recomputed for those orders only, by index on delivery (order_id, arrived_at). A second grouping
    # of every delivery to find them cost 0.3–0.4 s per 100,000 lines though none were in parts.
    earlier = DELIVERY.alias("earlier")
    reached = (select(func.sum(earlier.c.quantity))
               .where(earlier.c.order_id == DELIVERY.c.order_id, earlier.c.arrived_at <= DELIVERY.c.arrived_at)
               .correlate(DELIVERY).scalar_subquery())
    ordered = select(ORDER.c.quantity).where(ORDER.c.id == COMPLETION.c.order_id).correlate(COMPLETION).scalar_subquery()
    first = (select(func.min(DELIVERY.c.arrived_at))
             .where(DELIVERY.c.order_id == COMPLETION.c.order_id, reached >= ordered).correlate(COMPLETION)
             .scalar_subquery())
    conn.execute(update(COMPLETION).values(delivered_at=first)
                 .where(COMPLETION.c.deliveries > 1, COMPLETION.c.delivered_at.is_not(None)))
    orders = int(conn.execute(select(func.count()).select_from(COMPLETION)).scalar_one())
    refresh_statistics(conn, orders, COMPLETION)  # a temporary table: autovacuum never analyzes it
    return orders


def drop_order_completion(conn: Connection) -> None:
    COMPLETION.drop(conn, checkfirst=True)


def refresh_payables(conn: Connection, program_id: int, calendar: WorkingDays, *, roll_forward: bool, today: date,
                     due: str = "next_month_end") -> int:
    """One payable per accepted delivery, due at 次月底 of its acceptance, written with the day payments covered it
    — except one paid in full on time by its order's one settlement, which no one reads (`_single_payables`).

    Due dates need the calendar: Python maps each distinct acceptance date of the deliveries still without a
    payable (a few hundred at most) to its due date with the pure rule, into a small temporary table the one
    INSERT … SELECT joins. (A CASE with a branch per date for each of the four due columns cost ~5 s per
    100,000 payables on SQLite.) Returns how many payables were created.
    """
    lock_inputs(conn)
    marks = conn.execute(select(MARK.c.settlement_id, MARK.c.payment_id, MARK.c.delivery_id)
                         .where(MARK.c.program_id == program_id)).first()
    settlement_mark, payment_mark, delivery_mark = (int(m) for m in marks) if marks is not None else (0, 0, 0)
    top_settlement = int(conn.execute(select(func.coalesce(func.max(SETTLEMENT.c.id), 0))).scalar_one())
    top_delivery = int(conn.execute(select(func.coalesce(func.max(DELIVERY.c.id), 0))).scalar_one())
    for table in _PAYABLE_TABLES:
        table.create(conn, checkfirst=True)
        conn.execute(delete(table))
    top_before = int(conn.execute(select(func.coalesce(func.max(PAYMENT.c.id), 0))).scalar_one())
    written = created = 0
    marks_ = (delivery_mark, payment_mark)
    if _due_dates(conn, program_id, marks_, calendar, roll_forward=roll_forward, due=due):
        # Decided before the single payables are written (they would count as payables of their orders).
        running = _needs_running_sums(conn, marks_, top_before)
        written = _single_payables(conn, program_id, delivery_mark, today)
        # Every delivery written with its paid day or skipped as paid on time (the common first pass): no payable
        # left for the running sums, and no scan of every delivery to find that out.
        created = written + (_new_payables(conn, program_id, marks_) if running else 0)
    program_orders = select(ORDER.c.id).where(ORDER.c.program_id == program_id)
    # An order whose only payable this pass wrote with its paid day (`_single_payables`) is settled already.
    settled_now = exists().where(PAYMENT.c.order_id == SETTLEMENT.c.order_id, PAYMENT.c.id > top_before)
    branches = [select(NEW.c.order_id)]
    # With no payable before this pass (the first pass), a settlement changes only orders already in NEW (the
    # others have no payable to cover, or were settled just now): scanning every settlement to find them cost
    # 1.0 s of CPU at 1,000,000 lines on SQLite and found nothing.
    if top_before:
        branches += [
            select(SETTLEMENT.c.order_id).where(SETTLEMENT.c.id > settlement_mark,
                                                SETTLEMENT.c.order_id.in_(program_orders), ~settled_now),
            select(PAYMENT.c.order_id).where(PAYMENT.c.id > payment_mark, PAYMENT.c.id <= top_before,
                                             PAYMENT.c.order_id.in_(program_orders)),
        ]
    conn.execute(insert(CHANGED).from_select(
        ["order_id"], union(*branches) if len(branches) > 1 else branches[0].distinct()))
    refresh_statistics(conn, conn.execute(select(func.count()).select_from(CHANGED)).scalar_one(), CHANGED)
    _cover(conn)
    conn.execute(insert(PAYMENT).from_select(
        ["order_id", "delivery_id", "institution_id", "amount", "due_on", "due_on_provisional", "due_from",
         "due_working_days", "paid_on"],
        select(NEW.c.order_id, NEW.c.delivery_id, NEW.c.institution_id, NEW.c.amount, NEW.c.due_on,
               NEW.c.due_on_provisional, NEW.c.due_from, NEW.c.due_working_days, COVERED.c.paid_on)
        # In delivery order, so the ids the payables get keep the order the running sum gave them (by delivery)
        .select_from(NEW.outerjoin(COVERED, (COVERED.c.kind == 1) & (COVERED.c.ref_id == NEW.c.delivery_id)))
        .order_by(NEW.c.delivery_id)))
    refresh_statistics(conn, created - written, PAYMENT)
    conn.execute(
        update(PAYMENT)
        .values(paid_on=COVERED.c.paid_on)
        .where(COVERED.c.kind == 0, PAYMENT.c.id == COVERED.c.ref_id,
               PAYMENT.c.paid_on.is_distinct_from(COVERED.c.paid_on))
    )
    top_payment = int(conn.execute(select(func.coalesce(func.max(PAYMENT.c.id), 0))).scalar_one())
    _set_marks(conn, program_id, marks is not None, top_settlement, top_payment, top_delivery)
    for table in reversed(_PAYABLE_TABLES):
        table.drop(conn)
    return created


def lock_inputs(conn: Connection) -> None:
    """PostgreSQL: wait for imports of settlements and deliveries in flight, and hold new ones until the pass commits.

    The marks are the highest ids seen: a settlement committed later with a lower id (its import began before the
    pass) would never be read. SHARE ROW EXCLUSIVE also keeps two passes from interleaving. SQLite has one writer.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE settlement, delivery IN SHARE ROW EXCLUSIVE MODE")


def _due_dates(conn: Connection, program_id: int, marks: tuple[int, int], calendar: WorkingDays, *, roll_forward: bool,
               due: str) -> int:
    """Fill DUE with the 次月底 of each acceptance date of the program's deliveries that need a payable (`_unbilled`);
    how many such deliveries there are."""
    program_deliveries = (select(DELIVERY.c.accepted_on, func.count()).join(ORDER, ORDER.c.id == DELIVERY.c.order_id)
                          .where(ORDER.c.program_id == program_id, _unbilled(marks))
                          .group_by(DELIVERY.c.accepted_on))
    counted = conn.execute(program_deliveries).all()
    accepted = [r[0] for r in counted]
    if not accepted:
        return 0
    # 次月底 rolled forward into a year without an official schedule is provisional (暂定): stored with its
    # basis so entering the schedule recomputes it (tasks/calendar/schedules.py).
    plain = {d: payment_due_on(d, calendar, roll_forward=False, due=due) for d in accepted}
    deadlines = {d: calendar.deadline(end, 0) if roll_forward else fixed_deadline(end) for d, end in plain.items()}
    conn.execute(insert(DUE), [{"accepted_on": d, **due_columns(dl)} for d, dl in deadlines.items()])
    return sum(int(r[1]) for r in counted)


def _unbilled(marks: tuple[int, int]) -> ColumnElement[bool]:
    """A delivery that needs its payable this pass: it has none, and it, another delivery of its order or a
    payable of its order recorded by hand is new (`marks`: the delivery and payable marks).

    A delivery at or below the mark without a payable was paid on time by its order's one settlement and skipped
    (`_single_payables`). Settlements arriving later only pay it earlier (amounts are positive), but another
    payable of its order changes the order's running sums (oldest due first), so the skipped payable is written
    then, with the new one.
    """
    unbilled = ~exists().where(PAYMENT.c.delivery_id == DELIVERY.c.id)
    if (orders := _touched_orders(marks)) is None:
        return unbilled
    return and_(unbilled, DELIVERY.c.order_id.in_(orders))


def _touched_orders(marks: tuple[int, int]) -> Any:
    """The orders with a delivery or a payable recorded by hand since the last pass (None: every order, as on a
    first pass)."""
    delivery_mark, payment_mark = marks
    if not delivery_mark:
        return None
    newer, recorded = DELIVERY.alias("newer"), PAYMENT.alias("recorded")
    return union(select(newer.c.order_id).where(newer.c.id > delivery_mark),
                 select(recorded.c.order_id).where(recorded.c.id > payment_mark, recorded.c.delivery_id.is_(None)))


def _needs_running_sums(conn: Connection, marks: tuple[int, int], top_before: int) -> bool:
    """Whether some delivery needing a payable is not `_single_payables`' (its order has another delivery, a payable
    already or two settlements) — erring towards yes, which costs a scan, never a payable.

    Three probes that stop at the first row found: counting the single payables to compare with the deliveries
    needed the rows twice (a CTE: 1.5 of the 6 s that INSERT took at 1,000,000 lines on PostgreSQL).
    """
    orders = _touched_orders(marks)

    def touched(column: Any) -> list[ColumnElement[bool]]:
        return [] if orders is None else [column.in_(orders)]

    probes = [select(COMPLETION.c.order_id).where(COMPLETION.c.deliveries > 1, *touched(COMPLETION.c.order_id)),
              select(SETTLEMENT.c.order_id).where(*touched(SETTLEMENT.c.order_id))
              .group_by(SETTLEMENT.c.order_id).having(func.count() > 1)]
    if top_before:
        probes.append(select(PAYMENT.c.order_id).where(PAYMENT.c.id <= top_before, *touched(PAYMENT.c.order_id)))
    return any(conn.execute(probe.limit(1)).first() is not None for probe in probes)


def _single_payables(conn: Connection, program_id: int, delivery_mark: int, today: date) -> int:
    """Write at once, with its paid day, the payable of each order delivered in one new delivery, with no payable
    yet and at most one settlement, unless that settlement paid it on time; how many were written. Most orders
    are so: their payable is covered when that settlement pays its amount, with no running sums. The running sums
    (`_cover`) take the rest.

    A payable paid in full on or before its due day (and today), by a due day that is not provisional, is read
    by no one: every reader asks for payables unpaid, or paid after their due day or after today (a provisional
    due day may move when its year's schedule is entered). Writing the ~60 % of a provincial pass's payables
    that are so was ~3 of the INSERT's 7.5–7.9 s of CPU at 1,000,000 lines on PostgreSQL (128 MB of shared
    buffers: the backend evicted and wrote index pages itself). The delivery mark remembers they were seen.

    Measured at 100,000 order lines: the temporary tables of the running sums (payables to create, changed
    orders, what is owed, what is paid, the covered days) cost 4.6 s of a 16 s first pass on SQLite and 9.5 s of
    PostgreSQL's, against 0.4 s for the plain SQL's own grouping of deliveries and settlements.
    """
    amount = func.round(DELIVERY.c.quantity * ORDER.c.unit_price, 2)
    no_payable = ~exists().where(PAYMENT.c.order_id == ORDER.c.id)  # none from a delivery, none recorded by hand
    joined = (DELIVERY.join(ORDER, ORDER.c.id == DELIVERY.c.order_id)
              .join(COMPLETION, COMPLETION.c.order_id == DELIVERY.c.order_id))
    where: list[ColumnElement[bool]] = [ORDER.c.program_id == program_id, COMPLETION.c.deliveries == 1, no_payable,
                                        DELIVERY.c.id > delivery_mark]
    due_of = _due_by_day(conn)
    if due_of is None:
        joined = joined.join(DUE, DUE.c.accepted_on == DELIVERY.c.accepted_on)
        due_of = {c.name: c for c in DUE.c}
    else:
        where.append(due_of["due_on"].is_not(None))  # as the join: a delivery accepted on a day DUE has
    if conn.dialect.name == "sqlite":
        # The order's one settlement, if any, joined as it is: orders with two or more have a second one
        # (`another`) and are left to the running sums. SQLite materialized the grouping below and built an
        # automatic index on it; these lookups by the settlement's (order_id, …) key took the SELECT from 0.46 to
        # 0.35 s of CPU at 200,000 lines (the whole INSERT at 1,000,000: 3.9 → 3.7 s). PostgreSQL hashed the
        # settlements twice this way (the INSERT 7.4 → 9.1 s of CPU at 1,000,000 lines), so it groups them.
        other = SETTLEMENT.alias("other")
        joined = joined.outerjoin(SETTLEMENT, SETTLEMENT.c.order_id == DELIVERY.c.order_id)
        where.append(~exists().where(other.c.order_id == DELIVERY.c.order_id, other.c.id != SETTLEMENT.c.id))
        covered, paid_day = cents(SETTLEMENT.c.amount) >= cents(amount), SETTLEMENT.c.paid_on
    else:
        # PostgreSQL's NUMERIC is exact: the settlement's amount against the payable's (both in whole cents as
        # stored) is the comparison in cents without a multiplication, rounding and cast per settlement and per
        # delivery (~930,000 and ~980,000 rows at 1,000,000 lines). The order's one settlement joined as it is and
        # "no other settlement of the order" (another (paid_on, amount): the settlement's unique key) as a merge
        # anti-join, as on SQLite, not a grouping of every settlement (count, sum, max): the grouping and the
        # materialization its merge join needed were 0.67 of the SELECT's 2.2 s at 1,000,000 lines; the anti-join
        # runs on the ~243,000 rows the filter keeps (SELECT 2.20 → 1.66 s, EXPLAIN ANALYZE, same base).
        other = SETTLEMENT.alias("other")
        joined = joined.outerjoin(SETTLEMENT, SETTLEMENT.c.order_id == DELIVERY.c.order_id)
        where.append(~exists().where(other.c.order_id == DELIVERY.c.order_id,
                                     tuple_(other.c.paid_on, other.c.amount)
                                     != tuple_(SETTLEMENT.c.paid_on, SETTLEMENT.c.amount)))
        covered, paid_day = SETTLEMENT.c.amount >= amount, SETTLEMENT.c.paid_on
    paid_on = case((covered, paid_day))
    # As `paid_on` not null, on or before the due day and today, but naming the cover once: PostgreSQL computes an
    # expression as often as it is written, and `paid_on` three times over computed every delivery's amount in
    # cents three more times in the join filter (979,137 deliveries at 1,000,000 lines; the join's own time 1.65 →
    # 1.12 s, EXPLAIN ANALYZE, same minutes). Never NULL: no settlement is not covered.
    on_time = and_(func.coalesce(covered, false()), paid_day <= due_of["due_on"], paid_day <= literal(today, Date),
                   due_of["due_on_provisional"].is_not(True))
    rows = (
        select(ORDER.c.id, DELIVERY.c.id, ORDER.c.institution_id, amount, due_of["due_on"],
               due_of["due_on_provisional"], due_of["due_from"], due_of["due_working_days"], paid_on)
        .select_from(joined)
        .where(*where, ~on_time)
        # No running sum reads these payables' ids in any order (each order has this one payable). PostgreSQL's
        # hash joins hand the rows out at random, and its indexes on delivery_id and order_id were filled at
        # random: in delivery order the INSERT took 7.6 s of CPU, not 8.1 (psql on the 1,000,000-line base, two
        # runs each; wall 16-25 s, not 25-32). SQLite's plan is in order-number order; sorting cost it 8 % more.
    )
    if conn.dialect.name == "postgresql":
        rows = rows.order_by(DELIVERY.c.id)
    # Deliveries, orders, COMPLETION and the grouped settlements all come in order-id order by their keys: merged,
    # not three hash tables of ~1,000,000 rows (60-70 MB each) at 1,000,000 lines. The SELECT alone, psql, same
    # base, twice each: 3.8 s of CPU with hash joins, 2.7 merged.
    with merge_joins(conn):
        written = int(conn.execute(insert(PAYMENT).from_select(
            ["order_id", "delivery_id", "institution_id", "amount", "due_on", "due_on_provisional", "due_from",
             "due_working_days", "paid_on"], rows).execution_options(preserve_rowcount=True)).rowcount)
    refresh_statistics(conn, written, PAYMENT)
    return written


# Days of acceptance a due-date array may span (about 14 years); DUE is joined beyond that.
_DUE_SPAN_DAYS = 5_000


def _due_by_day(conn: Connection) -> dict[str, ColumnElement[Any]] | None:
    """PostgreSQL: DUE's columns for each delivery as constant arrays indexed by its acceptance day (`None` elsewhere,
    or when the days span more than `_DUE_SPAN_DAYS`: join DUE).

    The single payables join every delivery, order, COMPLETION and grouped settlement by order id with merge joins
    (`merge_joins`); with hash joins off, DUE's hundred days joined by a merge too, which sorted all ~1,000,000
    deliveries by acceptance day first — through 50 MB of temporary files at 1,000,000 lines — to look up a
    hundred rows. An array subscript per row looks them up without the sort.
    """
    if conn.dialect.name != "postgresql":
        return None
    dues = conn.execute(select(DUE.c.accepted_on, DUE.c.due_on, DUE.c.due_on_provisional, DUE.c.due_from,
                               DUE.c.due_working_days).order_by(DUE.c.accepted_on)).all()
    if not dues or (dues[-1][0] - dues[0][0]).days >= _DUE_SPAN_DAYS:
        return None
    first = dues[0][0]
    span = (dues[-1][0] - first).days + 1
    columns: dict[str, ColumnElement[Any]] = {}
    day = DELIVERY.c.accepted_on - literal(first, Date) + 1  # date - date: whole days; arrays start at 1
    for k, column in enumerate((DUE.c.due_on, DUE.c.due_on_provisional, DUE.c.due_from, DUE.c.due_working_days),
                               start=1):
        values: list[Any] = [None] * span
        for row in dues:
            values[(row[0] - first).days] = row[k]
        array = ARRAY(column.type)
        columns[column.name] = type_coerce(Grouping(literal(values, array)), array)[day]  # (array)[day]
    return columns


def _new_payables(conn: Connection, program_id: int, marks: tuple[int, int]) -> int:
    """Fill NEW with a payable for each of the program's deliveries that needs one and that `_single_payables` did
    not take (an order with more than one delivery or settlement, or with a payable already); how many."""
    other = SETTLEMENT.alias("other")
    settlements = select(func.count()).where(other.c.order_id == DELIVERY.c.order_id).correlate(DELIVERY).scalar_subquery()
    not_single = or_(COMPLETION.c.deliveries > 1, exists().where(PAYMENT.c.order_id == DELIVERY.c.order_id),
                     settlements > 1)
    new = (
        select(DELIVERY.c.id, ORDER.c.id, ORDER.c.institution_id, func.round(DELIVERY.c.quantity * ORDER.c.unit_price, 2),
               DUE.c.due_on, DUE.c.due_on_provisional, DUE.c.due_from, DUE.c.due_working_days)
        .select_from(DELIVERY.join(ORDER, ORDER.c.id == DELIVERY.c.order_id)
                     .join(COMPLETION, COMPLETION.c.order_id == DELIVERY.c.order_id)
                     .join(DUE, DUE.c.accepted_on == DELIVERY.c.accepted_on))
        .where(ORDER.c.program_id == program_id, _unbilled(marks), not_single)
    )
    conn.execute(insert(NEW).from_select(
        ["delivery_id", "order_id", "institution_id", "amount", "due_on", "due_on_provisional", "due_from",
         "due_working_days"], new))
    # Counted, not taken from rowcount: psycopg reports -1 for some INSERT … SELECT statements.
    created = int(conn.execute(select(func.count()).select_from(NEW)).scalar_one())
    refresh_statistics(conn, created, NEW)
    return created


def _cover(conn: Connection) -> None:
    """COVERED: for each payable of a changed order, the first payment date at which the order's cumulative
    payments cover its cumulative payables (oldest due first; NULL while not covered)."""
    stored = (select(literal(0).label("kind"), PAYMENT.c.id.label("ref_id"), PAYMENT.c.order_id, PAYMENT.c.due_on,
                     PAYMENT.c.amount)
              .where(PAYMENT.c.order_id.in_(select(CHANGED.c.order_id))))
    fresh = select(literal(1), NEW.c.delivery_id, NEW.c.order_id, NEW.c.due_on, NEW.c.amount)
    payables = union_all(stored, fresh).subquery("payables")
    owed = select(payables.c.kind, payables.c.ref_id, payables.c.order_id,
                  func.sum(cents(payables.c.amount)).over(
                      partition_by=payables.c.order_id,
                      order_by=(payables.c.due_on, payables.c.kind, payables.c.ref_id)))
    conn.execute(insert(OWED).from_select(["kind", "ref_id", "order_id", "cum_owed"], owed))
    paid = (
        select(SETTLEMENT.c.order_id, SETTLEMENT.c.paid_on,
               func.sum(cents(SETTLEMENT.c.amount)).over(
                   partition_by=SETTLEMENT.c.order_id, order_by=(SETTLEMENT.c.paid_on, SETTLEMENT.c.id)))
        .where(SETTLEMENT.c.order_id.in_(select(CHANGED.c.order_id)))
    )
    conn.execute(insert(PAID).from_select(["order_id", "paid_on", "cum_paid"], paid))
    rows = int(conn.execute(select(func.count()).select_from(OWED)).scalar_one())
    refresh_statistics(conn, rows, OWED)
    refresh_statistics(conn, int(conn.execute(select(func.count()).select_from(PAID)).scalar_one()), PAID)
    covered = (
        select(OWED.c.kind, OWED.c.ref_id, func.min(PAID.c.paid_on))
        .select_from(OWED.outerjoin(PAID, (PAID.c.order_id == OWED.c.order_id) & (PAID.c.cum_paid >= OWED.c.cum_owed)))
        .group_by(OWED.c.kind, OWED.c.ref_id)
    )
    conn.execute(insert(COVERED).from_select(["kind", "ref_id", "paid_on"], covered))
    refresh_statistics(conn, rows, COVERED)


def _set_marks(conn: Connection, program_id: int, exists_: bool, settlement_id: int, payment_id: int,
               delivery_id: int) -> None:
    values = {"settlement_id": settlement_id, "payment_id": payment_id, "delivery_id": delivery_id}
    if exists_:
        conn.execute(update(MARK).where(MARK.c.program_id == program_id).values(**values))
    else:
        conn.execute(insert(MARK).values(program_id=program_id, **values))

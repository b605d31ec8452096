"""Sealing audit rows into their hash chains, and walking a chain to find the first broken row.

Two ways a row gets its place, both under the chain's head row (`AuditChainHead`), which the appending
transaction locks until it commits — so two writers neither fork a chain nor leave a gap:
- **as it is written**, for the bulk writers (core/bulk.py): `take_tail` (or `take_places`, which also reserves
  ids) locks the head, the writer inserts the rows with their places and no hash, and stores their one link row
  (`models.audit.link_seals`, format 3: one sha256 over the rows' text built column by column, ~0.4 µs a row;
  format 2, one sha256 and a crc32 locator per row built row by row, cost ~1.0; format 1, a sha256 per row,
  ~1.2), and `advance_head` moves the head. No audit row is updated: sealing 100,000 rows at commit
  by reading them back and `UPDATE`-ing them cost 8 s of figure 1 on SQLite and 10 s on PostgreSQL. Now a bulk
  write's seal costs 0.12-0.22 s of CPU per 100,000 rows on SQLite and 0.14-0.21 s on PostgreSQL (0.4-0.6 s
  before its ids were reserved with one sequence lookup), ~0.1 s of it the hashing (benchmarks/README.md, "The
  audit seal's cost, session 10").
- **at commit**, for every other writer (a handful of rows from the ORM, raw SQL): they leave `chain_seq` NULL
  and the commit (a Session's `before_commit`, core/db.py, or `seal_audit` called by a writer on a bare
  connection) seals them onto the tail. Chains are locked in ascending order there, so two such sealers
  never wait for each other in a circle. Such rows written before a bulk write of the same transaction (a
  gate decision's own row, then its items') are sealed by `take_places` first, which keeps that chain's head
  locked and unmoved for the bulk rows: the head is read and moved once.

On PostgreSQL a seal at commit takes only the rows its own transaction inserted (`xmin`), so a row slipped in
by hand with an empty chain position stays outside the chain, where `verify_chain` names it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    cast,
    event,
    func,
    literal,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from models.audit import (
    CONTENT_COLUMNS,
    GENESIS,
    LOCATOR_LENGTH,
    AuditChainHead,
    AuditEvent,
    AuditLink,
    bulk_link,
    chain_of,
    content_bytes,
    link_hash,
    link_row_locators,
    link_seals,
    locator,
    row_body,
)

AUDIT: Table = AuditEvent.__table__  # type: ignore[attr-defined]
HEAD: Table = AuditChainHead.__table__  # type: ignore[attr-defined]
LINK: Table = AuditLink.__table__  # type: ignore[attr-defined]


def _last_hash(chain: int, seq: Any) -> ColumnElement[Any]:
    """The hash at a chain's place `seq`: the row's own (formats 1 and 2) or, for format 3's rows, which carry
    none, the hash of the link that ends there."""
    own = select(AUDIT.c.chain_hash).where(AUDIT.c.chain == chain, AUDIT.c.chain_seq == seq).scalar_subquery()
    link = select(LINK.c.hash).where(LINK.c.chain == chain, LINK.c.last_seq == seq).scalar_subquery()
    return func.coalesce(own, link)


def _content(conn: Connection) -> list[ColumnElement[Any]]:
    """The content columns as the database stores them, converted by nothing in Python: the JSON document as its
    text (PostgreSQL's json keeps the text as written), the role as its value, the time as UTC text in SQLite's
    own stored form (PostgreSQL formats it so in SQL). Every value then is a str, an int or None, hashed as is:
    converting 100,000 rows to Python values and back cost more than the hashing."""
    columns: list[ColumnElement[Any]] = []
    for name in CONTENT_COLUMNS:
        column = AUDIT.c[name]
        if name == "data":
            columns.append(cast(column, Text).label(name))
        elif name == "at" and conn.dialect.name == "postgresql":
            columns.append(func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI:SS.US").label(name))
        elif name in ("role", "at"):
            columns.append(type_coerce(column, String).label(name))
        else:
            columns.append(column)
    return columns


VERIFY_BATCH = 5000


def _own_rows(conn: Connection, own_only: bool) -> ColumnElement[bool]:
    unsealed = AUDIT.c.chain_seq.is_(None)
    if conn.dialect.name != "postgresql" or not own_only:
        return unsealed  # SQLite: the writing transaction holds the database's only write lock
    # xmin is the 32-bit transaction id that inserted the row; pg_current_xact_id() is the 64-bit one.
    return unsealed & text("auditevent.xmin::text = (pg_current_xact_id()::text::bigint & 4294967295)::text")


WRITTEN = "sanjin_audit_written"  # in the DBAPI connection's info: this transaction may have written audit rows


def mark_audit_written(conn: Connection) -> None:
    """Note that the connection's transaction wrote audit rows, so its commit seals them (see `_statement_writes`)."""
    conn.info[WRITTEN] = True


@event.listens_for(Engine, "before_execute")
def _statement_writes(conn: Connection, clause: Any, multiparams: Any, params: Any, options: Any) -> None:
    """An INSERT into auditevent built with SQLAlchemy marks its connection; the bulk writers' raw SQL marks itself.

    Only a marked connection's commit probes for unsealed rows: on PostgreSQL a probe right after a 100,000-row
    seal walks the partial index's dead entries until vacuum removes them, and most commits write no audit row.
    """
    if isinstance(clause, Insert) and clause.table is AUDIT:
        conn.info[WRITTEN] = True


_SEALING = [True]


def sealing_enabled() -> bool:
    return _SEALING[0]


def set_sealing(enabled: bool) -> None:
    """Benchmarks only (figure 1 with and without sealing, in one run): with False, bulk writers leave their audit
    rows unsealed and commits seal nothing. A database written so does not verify."""
    _SEALING[0] = enabled


def seal_written(conn: Connection) -> int:
    """Seal if this connection's transaction wrote audit rows (the Session commit hook); else nothing, not even a probe."""
    return _seal_written(conn)[0]


def _seal_written(conn: Connection, hold: int | None = None) -> tuple[int, tuple[int, str] | None]:
    if not conn.info.get(WRITTEN) or not _SEALING[0]:
        conn.info[WRITTEN] = False
        return 0, None
    sealed = _seal(conn, own_only=True, heads=True, hold=hold)
    conn.info[WRITTEN] = False
    return sealed


def seal_audit(conn: Connection, *, own_only: bool = True, heads: bool = True) -> int:
    """Put the audit rows this transaction wrote at the end of their chains; how many. Call just before commit.

    `own_only=False` (the migration that introduced the chains) seals every unsealed row, oldest first;
    `heads=False` there too, as the head table came later (migration 0018 builds it from the tails).
    """
    return _seal(conn, own_only=own_only, heads=heads)[0]


def _seal(conn: Connection, *, own_only: bool, heads: bool, hold: int | None = None
          ) -> tuple[int, tuple[int, str] | None]:
    """`seal_audit`, and with `hold` a chain whose head stays locked and unmoved: its new end is returned instead,
    for the bulk write that appends next (`take_places`; it moves the head once, after its own rows)."""
    # The common case, one probe of the (near-empty) partial index. Ordered by id so that SQLite takes that index:
    # unordered, it scanned the whole (chain, chain_seq) index instead, 400,000 entries on every commit.
    probe = select(AUDIT.c.id).where(AUDIT.c.chain_seq.is_(None)).order_by(AUDIT.c.id).limit(1)
    if conn.execute(probe).first() is None:
        return 0, None
    rows = conn.execute(select(*_content(conn)).where(_own_rows(conn, own_only)).order_by(AUDIT.c.id)).all()
    if not rows:
        return 0, None
    by_chain: dict[int, list[Any]] = {}
    for row in rows:
        by_chain.setdefault(chain_of(row.program_id), []).append(row)
    sealed: list[tuple[int, int, int, str]] = []  # id, chain, seq, hash
    held: tuple[int, str] | None = None

    for chain in sorted(by_chain):  # ascending: two sealers never wait for each other in a circle
        seq, previous = _take_head(conn, chain) if heads else _tail(conn, chain)
        for row in by_chain[chain]:
            seq += 1
            previous = link_hash(previous, content_bytes(seq, row))
            sealed.append((int(row.id), chain, seq, previous))
        if chain == hold:
            held = (seq, previous)
        elif heads:
            advance_head(conn, chain, seq, previous)
    _store(conn, sealed)
    return len(sealed), held


def _tail(conn: Connection, chain: int) -> tuple[int, str]:
    """The chain's last sealed place and hash, read from its rows (0 and GENESIS for a new chain)."""
    last = conn.execute(select(func.max(AUDIT.c.chain_seq)).where(AUDIT.c.chain == chain)).scalar()
    if last is None:
        return 0, GENESIS
    return int(last), str(conn.execute(select(_last_hash(chain, int(last)))).scalar_one())


def _take_head(conn: Connection, chain: int) -> tuple[int, str]:
    """Lock the chain's head until this transaction ends and read it: the place and hash to append after.

    A chain's first writer creates its head (from the chain's rows, should it have any without a head). The
    insert is a write, so on SQLite it takes the database's write lock before anything is read; on PostgreSQL
    `FOR UPDATE` makes a second appender wait for the first one's commit, then read the head it moved.
    """
    postgres = conn.dialect.name == "postgresql"
    read = select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.chain == chain)
    if postgres:
        read = read.with_for_update()
        if (head := conn.execute(read).first()) is not None:  # the usual case: the head exists, now locked
            return int(head.seq), str(head.hash)
    insert: Any = pg_insert(HEAD) if postgres else sqlite_insert(HEAD)
    last = select(func.max(AUDIT.c.chain_seq)).where(AUDIT.c.chain == chain).scalar_subquery()
    tail = select(literal(chain, Integer), func.coalesce(func.max(AUDIT.c.chain_seq), 0),
                  func.coalesce(_last_hash(chain, last), GENESIS)).where(AUDIT.c.chain == chain)
    # SQLite: always, as the insert (a no-op if the head exists) takes the write lock.
    conn.execute(insert.from_select(["chain", "seq", "hash"], tail).on_conflict_do_nothing(index_elements=["chain"]))
    head = conn.execute(read).one()
    return int(head.seq), str(head.hash)


def advance_head(conn: Connection, chain: int, seq: int, digest: str) -> None:
    """Move the (locked) head to the chain's new last place."""
    conn.execute(HEAD.update().where(HEAD.c.chain == chain).values(seq=seq, hash=digest))


@dataclass(frozen=True)
class Places:
    """Where a bulk write's rows go: their ids, and the place and hash they follow in their chain.

    `contiguous`: the ids are `ids[0]`, `ids[0] + 1`, … — the usual case, so an insert can compute each row's id
    from its offset instead of receiving them all as a parameter.
    """

    chain: int
    ids: list[int]
    after_seq: int
    previous: str
    contiguous: bool = True


def take_places(conn: Connection, chain: int, n: int) -> Places:
    """Reserve `n` ids and the next `n` places of `chain` for rows written sealed (see the module's docstring).

    Rows this transaction wrote earlier and left to the commit are sealed first, so the chain keeps the order
    in which the transaction wrote. The head stays locked until the transaction ends; the writer inserts the
    rows with their hashes and calls `advance_head`.
    """
    after_seq, previous = take_tail(conn, chain)
    if conn.dialect.name == "postgresql":
        ids, contiguous = _reserve_ids(conn, n)
        return Places(chain, ids, after_seq, previous, contiguous)
    # SQLite: the head's insert holds the write lock, so no other writer takes ids meanwhile
    top = int(conn.execute(select(func.coalesce(func.max(AUDIT.c.id), 0))).scalar_one())
    return Places(chain, list(range(top + 1, top + n + 1)), after_seq, previous)


def take_tail(conn: Connection, chain: int) -> tuple[int, str]:
    """Lock `chain`'s head for a bulk write and return the place and hash it appends after (`take_places` without
    reserving ids: format 3's writer lets the insert number its rows). Rows this transaction wrote earlier and left
    to the commit are sealed first, so the chain keeps the order in which the transaction wrote."""
    _, held = _seal_written(conn, hold=chain)  # a decision's own row, written just before its items' rows
    return held if held is not None else _take_head(conn, chain)


def _reserve_ids(conn: Connection, n: int) -> tuple[list[int], bool]:
    """`n` ids from auditevent's sequence (PostgreSQL), and whether they are contiguous.

    The sequence is looked up once: named inside `nextval(...)` (`pg_get_serial_sequence` per row) it cost
    0.25-0.35 s of the server's CPU per 100,000 ids, more than the insert's own `nextval`s. One backend taking
    `n` values in one statement gets them in a row unless another writer of audit rows takes some meanwhile;
    then these are given up (a gap in the ids, as a rolled-back insert leaves) and `n` more come back as one
    array, in order.
    """
    sequence = conn.execute(text("SELECT CAST(CAST(pg_get_serial_sequence('auditevent', 'id') AS regclass) "
                                 "AS oid)")).scalar_one()
    reserve = "SELECT nextval(CAST(CAST(:seq AS oid) AS regclass)) AS i FROM generate_series(1, :n)"
    first, last = conn.execute(text(f"SELECT min(i), max(i) FROM ({reserve}) AS reserved"),
                               {"seq": int(sequence), "n": n}).one()
    if n and last - first == n - 1:
        return list(range(first, last + 1)), True
    ids = conn.execute(text(f"SELECT array_agg(i ORDER BY i) FROM ({reserve}) AS reserved"),
                       {"seq": int(sequence), "n": n}).scalar_one()
    return list(ids or []), False


def _store(conn: Connection, sealed: list[tuple[int, int, int, str]]) -> None:
    if conn.dialect.name == "postgresql":
        # One statement: the seals as a JSON document joined on the primary key.
        conn.execute(text(
            "UPDATE auditevent SET chain = s.chain, chain_seq = s.seq, chain_hash = s.hash "
            "FROM json_to_recordset(CAST(:doc AS json)) AS s(id integer, chain integer, seq integer, hash text) "
            "WHERE auditevent.id = s.id"), {"doc": json.dumps(
                [{"id": i, "chain": c, "seq": s, "hash": h} for i, c, s, h in sealed])})
        return
    conn.exec_driver_sql("UPDATE auditevent SET chain = ?, chain_seq = ?, chain_hash = ? WHERE id = ?",
                         [(c, s, h, i) for i, c, s, h in sealed])


@dataclass(frozen=True)
class ChainBreak:
    """The first row where a chain stops proving itself, and what happened there."""

    chain: int
    kind: str  # edited | deleted | inserted
    audit_id: int | None  # the row named (for a deletion: the first row after the gap)
    position: int | None  # its place in the chain (for a deletion: the first missing place)

    head: int | None = None  # for rows cut off the end: how long the chain was (its head, or the outside record)
    recorded: bool = False  # found against the heads recorded outside the database by an earlier check
    link: bool = False  # an `auditlink` row that proves none of the chain's rows (inserted), at `position`

    def message(self) -> str:
        where = f"审计记录 #{self.audit_id}" if self.audit_id is not None else "链尾"
        chain = f"项目链 {self.chain}" if self.chain else "系统链"
        if self.link:
            return (f"{chain}第 {self.position} 条处有一条不证明任何记录的链接记录（被插入） / a link row at position "
                    f"{self.position} of chain {self.chain} proves none of its rows (inserted)")
        if self.kind == "deleted" and self.audit_id is None:
            if self.position is None:
                return (f"{chain}的链头记录被删除 / the head of chain {self.chain} was deleted "
                        "(its newest rows may have been cut off)")
            source = "此前校验记下的链头" if self.recorded else "链头"
            source_en = "an earlier check recorded" if self.recorded else "its head records"
            return (f"{chain}第 {self.position} 条至链尾被删除（{source}为第 {self.head} 条） / audit rows from "
                    f"position {self.position} to the end of chain {self.chain} were deleted ({source_en} "
                    f"{self.head} rows)")
        if self.kind == "edited" and self.audit_id is None:
            return (f"{chain}第 {self.position} 条（链头）与链头记录不符，链被改写 / the rows of chain {self.chain} up "
                    f"to its head (position {self.position}) were rewritten")
        if self.kind == "edited":
            return (f"{chain}第 {self.position} 条（{where}）内容被改动 / audit row {self.audit_id} "
                    f"(position {self.position} of chain {self.chain}) was edited")
        if self.kind == "deleted":
            return (f"{chain}第 {self.position} 条起被删除（缺失于{where}之前） / audit rows from position "
                    f"{self.position} of chain {self.chain} were deleted (before row {self.audit_id})")
        return (f"{chain}中的{where}不在链上（被插入） / audit row {self.audit_id} in chain {self.chain} "
                f"was inserted outside the chain")


@dataclass(frozen=True)
class ChainReport:
    """What a walk of one or more chains found: rows checked, each chain's head, the first break."""

    rows: int
    heads: dict[int, tuple[int, str]]
    broken: ChainBreak | None


def _walk(conn: Connection, chain: int) -> Iterator[Any]:
    """The chain's rows in chain order, a batch at a time (keyset on the unique (chain, chain_seq) index)."""
    after = 0
    query = (select(AUDIT.c.chain_seq, AUDIT.c.chain_hash, *_content(conn))
             .where(AUDIT.c.chain == chain, AUDIT.c.chain_seq > bindparam("after"))
             .order_by(AUDIT.c.chain_seq).limit(VERIFY_BATCH))
    while batch := conn.execute(query, {"after": after}).all():
        yield from batch
        after = int(batch[-1].chain_seq)


def verify_chain(conn: Connection, program_id: int | None = None) -> ChainReport:
    """Recompute one program's chain (or every chain) from its first row; stop at the first break.

    A row whose hash does not follow from its predecessor's and its own content was edited; a gap in
    the positions is a deletion; a row outside any chain (or in the wrong one) was inserted. Three formats are
    read (models/audit.py, BULK_MARK and LINK_MARK): a row with a 64-character hash is a link of its own (format
    1) unless rows with 8-character locators come before it, then it ends their bulk link (format 2), proven by
    one sha256 over all of them; the locators name the row inside a broken link (`_named_in_link`). A row with
    no hash (format 3) must be the first place of an `auditlink` row, which proves it and the rows up to its
    `last_seq` (`_linked_break`); no link there (removed) or a hash inside its rows breaks the chain. Rows other
    transactions are writing right now are not visible here, and a sealed row is never outside its chain.
    """
    chains = ([chain_of(program_id)] if program_id is not None else
              sorted({int(c) for c in conn.execute(select(AUDIT.c.chain).where(AUDIT.c.chain.is_not(None))
                                                   .distinct()).scalars()}
                     | {int(c) for c in conn.execute(select(HEAD.c.chain)).scalars()} | {0}))
    rows, heads = 0, dict[int, tuple[int, str]]()
    for chain in chains:
        # Outside every chain: no place (a row awaiting its commit's seal is never visible unsealed), or a place
        # no walk reaches — no chain, or a place before the first.
        outside = select(AUDIT.c.id).where(or_(AUDIT.c.chain_seq.is_(None), AUDIT.c.chain.is_(None),
                                               AUDIT.c.chain_seq < 1))
        if program_id is not None:
            outside = outside.where(AUDIT.c.program_id == program_id if program_id else AUDIT.c.program_id.is_(None))
        stray = conn.execute(outside.order_by(AUDIT.c.id).limit(1)).scalar()
        if stray is None:  # a sealed row whose program is not its chain's was moved (or inserted) there
            moved = func.coalesce(AUDIT.c.program_id, 0) != chain
            stray = conn.execute(select(AUDIT.c.id).where(AUDIT.c.chain == chain, moved).order_by(AUDIT.c.id)
                                 .limit(1)).scalar()
        # The head is read before the rows: a writer committing meanwhile only adds rows after it.
        head = conn.execute(select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.chain == chain)).first()
        seq, previous = 0, GENESIS
        at_head: str | None = None  # the hash found at the head's place
        first_break: ChainBreak | None = None
        link: list[tuple[Any, bytes]] = []  # the rows of a bulk link read so far, each with its body (format 2)
        links = _links(conn, chain)  # format 3, by first place
        used: set[int] = set()  # the links the walk used: any other one inside the walked places is forged
        linked: tuple[Any, list[Any]] | None = None  # format 3: the link being read and its rows so far
        for row in _walk(conn, chain):
            rows += 1
            position = int(row.chain_seq)
            if position != seq + 1:
                first_break = ChainBreak(chain, "deleted", int(row.id), seq + 1)
                break
            seq = position
            if row.chain_hash is None or linked is not None:  # format 3: a row proven by a link row
                if linked is None:
                    if not link and position not in links:  # a bulk write committed since the links were read
                        links = _links(conn, chain)  # (its rows and its link commit together)
                    if link or (start := links.get(position)) is None:  # no link starts here: removed, or the
                        first_break = ChainBreak(chain, "edited", int(row.id), position)  # row's hash erased
                        break
                    used.add(position)
                    linked = (start, [])
                if row.chain_hash is not None or position > linked[0].last_seq:  # a hash inside a link's rows
                    first_break = ChainBreak(chain, "edited", int(row.id), position)
                    break
                linked[1].append(row)
                if position < linked[0].last_seq:
                    continue
                found = _linked_break(chain, previous, *linked)
                if found is not None:
                    first_break = found
                    break
                previous, linked = str(linked[0].hash), None
                if head is not None and position == head.seq:
                    at_head = previous
                continue
            stored = str(row.chain_hash)
            if len(stored) == LOCATOR_LENGTH:  # a bulk link's row before its last: proven by the last
                link.append((row, row_body(position, tuple(row)[2:])))
                continue
            if link:  # the last row of a bulk link: one sha256 over every row's body
                body = row_body(position, tuple(row)[2:])
                if bulk_link(previous, [b for _, b in link] + [body]) != stored:
                    first_break = _named_in_link(chain, link, row)
                    break
                link = []
            elif link_hash(previous, content_bytes(position, tuple(row)[2:])) != stored:  # format 1, a row each
                first_break = ChainBreak(chain, _edited_or_inserted(conn, chain, row, previous), int(row.id),
                                         position)
                break
            previous = stored
            if head is not None and position == head.seq:
                at_head = previous
        if first_break is None and linked is not None:  # the chain ends inside a format-3 link: a row renumbered
            first_break = _named_by_locators(chain, *linked)  # into the gap is named, else the rows were cut off
            link = [(r, b"") for r in linked[1]]
        if first_break is None and link:  # the chain ends inside a bulk link: its last row was cut off
            seq = int(link[0][0].chain_seq) - 1  # nothing after the last full link is proven
            first_break = _against_head(chain, head, seq, at_head) or ChainBreak(chain, "deleted", None, seq + 1)
        if first_break is None:
            first_break = _against_head(chain, head, seq, at_head)
        if first_break is None and (forged := sorted(f for f in links if f not in used and f <= seq)):
            first_break = ChainBreak(chain, "inserted", None, forged[0], link=True)
        if first_break is None and stray is not None:
            first_break = ChainBreak(chain, "inserted", int(stray), None)
        if first_break is not None:
            return ChainReport(rows, heads, first_break)
        heads[chain] = (seq, previous)
    return ChainReport(rows, heads, None)


def _links(conn: Connection, chain: int) -> dict[int, Any]:
    """The chain's format-3 link rows by their first place."""
    return {int(r.first_seq): r for r in conn.execute(select(LINK).where(LINK.c.chain == chain))}


def _against_head(chain: int, head: Any, last: int, at_head: str | None) -> ChainBreak | None:
    """A chain shorter than its head lost its newest rows; a chain with rows and no head lost the head too."""
    if head is None or head.seq == 0:
        return ChainBreak(chain, "deleted", None, None) if last else None
    if last < head.seq:
        return ChainBreak(chain, "deleted", None, last + 1, head=int(head.seq))
    if at_head != head.hash:  # the rows up to the head were replaced by a chain that links but is not the one sealed
        return ChainBreak(chain, "edited", None, int(head.seq))
    return None


def check_recorded(conn: Connection, recorded: dict[int, tuple[int, str]]) -> ChainBreak | None:
    """Each chain still holds, at a place recorded outside the database earlier, the hash recorded there.

    This catches what the head row cannot: rows cut off the end together with the head moved back (or deleted),
    by someone who can write the database (a superuser disables its triggers) but not the record.
    """
    for chain, (seq, digest) in sorted(recorded.items()):
        if seq == 0:
            continue
        found = conn.execute(select(AUDIT.c.id, AUDIT.c.chain_hash).where(AUDIT.c.chain == chain,
                                                                          AUDIT.c.chain_seq == seq)).first()
        if found is None:
            return ChainBreak(chain, "deleted", None, seq, head=seq, recorded=True)
        if found.chain_hash is not None:
            stored = found.chain_hash
        else:  # format 3: the link ending there; two links ending at one place are one too many (one is forged)
            ending = conn.execute(select(LINK.c.hash).where(LINK.c.chain == chain, LINK.c.last_seq == seq)
                                  ).scalars().all()
            stored = ending[0] if len(ending) == 1 else None
        if stored != digest:
            return ChainBreak(chain, "edited", int(found.id), seq, recorded=True)
    return None


def _named_in_link(chain: int, link: list[tuple[Any, bytes]], last: Any) -> ChainBreak:
    """The row of a broken bulk link to name: the first whose body no longer gives its locator — inserted if the
    row after it, read one place earlier, gives its own (the rest were renumbered to make room), else edited; the
    link's last row when every locator still holds (it has none, or an editor recomputed one: crc32 proves
    nothing, the link's sha256 does; models/audit.py, BULK_MARK)."""
    for i, (row, body) in enumerate(link):
        if locator(body) == row.chain_hash:
            continue
        if i + 1 < len(link):
            after = link[i + 1][0]
            if locator(row_body(int(after.chain_seq) - 1, tuple(after)[2:])) == after.chain_hash:
                return ChainBreak(chain, "inserted", int(row.id), int(row.chain_seq))
        return ChainBreak(chain, "edited", int(row.id), int(row.chain_seq))
    return ChainBreak(chain, "edited", int(last.id), int(last.chain_seq))


def _linked_break(chain: int, previous: str, link: Any, rows: list[Any]) -> ChainBreak | None:
    """Format 3: None if the link row proves its rows, else the row to name (see `_named_in_link`): the first
    whose locator no longer holds (inserted if the row after it gives its locator instead: the rest renumbered),
    or whose value of a column the link's rows shared differs from theirs; the link's last row otherwise."""
    values = [tuple(r)[2:] for r in rows]
    digest, _ = link_seals(previous, int(link.first_seq), [list(c) for c in zip(*values, strict=True)])
    if digest == link.hash:
        return None
    return _named_by_locators(chain, link, rows) or ChainBreak(chain, "edited", int(rows[-1].id),
                                                              int(rows[-1].chain_seq))


def _named_by_locators(chain: int, link: Any, rows: list[Any]) -> ChainBreak | None:
    """The first of a format-3 link's rows its locators or shared values name (`_linked_break`), if any."""
    values = [tuple(r)[2:] for r in rows]
    blob = bytes(link.locators)
    mask, runs = (int.from_bytes(blob[:2], "big"), int.from_bytes(blob[2:4], "big")) if len(blob) >= 4 else (0, 0)
    stored = [int.from_bytes(blob[i:i + 4], "big") for i in range(4, len(blob) - 3, 4)]
    found = link_row_locators(mask, values)
    common = {i: Counter(v[i] for v in values).most_common(1)[0][0] for i in range(len(CONTENT_COLUMNS))
              if not (mask | runs) & (1 << i)}
    # Each run's first value, by majority of the first three rows' (an edit or a deletion further on shifts the rest).
    starts = {i: Counter(v[i] - k for k, v in enumerate(values[:3]) if type(v[i]) is int).most_common(1)[0][0]
              for i in range(len(CONTENT_COLUMNS)) if runs & (1 << i)}
    for i, row in enumerate(rows):
        if i < len(stored) and found[i] != stored[i]:
            kind = "inserted" if i + 1 < len(found) and found[i + 1] == stored[i] else "edited"
            return ChainBreak(chain, kind, int(row.id), int(row.chain_seq))
        if any(values[i][c] != v for c, v in common.items()) or any(values[i][c] != v + i for c, v in starts.items()):
            return ChainBreak(chain, "edited", int(row.id), int(row.chain_seq))
    return None


def _edited_or_inserted(conn: Connection, chain: int, row: Any, previous: str) -> str:
    """A row that does not follow was inserted if the row after it follows from the one before it."""
    after = conn.execute(select(AUDIT.c.chain_seq, AUDIT.c.chain_hash, *_content(conn))
                         .where(AUDIT.c.chain == chain, AUDIT.c.chain_seq > row.chain_seq)
                         .order_by(AUDIT.c.chain_seq).limit(1)).first()
    if after is not None and link_hash(previous, content_bytes(int(after.chain_seq) - 1, tuple(after)[2:])) \
            == after.chain_hash:
        return "inserted"  # the rows after it were renumbered by one to make room
    return "edited"


__all__ = ["ChainBreak", "ChainReport", "Places", "advance_head", "check_recorded", "mark_audit_written", "seal_audit",
           "seal_written", "sealing_enabled", "set_sealing", "take_places", "take_tail", "verify_chain"]

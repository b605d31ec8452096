"""The audit trail: who moved what from which state to which, when and why — and the hash chain that
makes an edited, deleted or inserted row evident."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import repeat
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import Column, Index, LargeBinary, text
from sqlmodel import Field, SQLModel

from models.base import AwareDateTime, EnumString, JSONType
from models.states import Role
from models.transitions import AuditRecord

# An audit row that is no member of a bulk link (format 3: `chain_seq` set, `chain_hash` NULL): sealed one by one
# (formats 1 and 2) or not yet sealed. The predicate of the audit page's filter indexes, word for word: SQLite
# uses a partial index only for a query whose WHERE holds its predicate as one of its terms.
NOT_LINKED = "chain_hash IS NOT NULL OR chain_seq IS NULL"


class AuditEvent(SQLModel, table=True):
    """Append-only; written in the same transaction as the change it records, and sealed into its chain
    (`chain`, `chain_seq`, `chain_hash`) by that transaction's commit (core/audit_chain.py)."""

    __table_args__ = (
        # One entity's history: a handful of rows, sorted by (at, id) after the lookup. Narrow on purpose (migration
        # 0034): a bulk transition's rows land beside their applications' earlier rows all over this index, so
        # every entry's width is paid on each of figure 1's 100,000-row writes; (entity, entity_id, at, id)
        # entries were about twice as wide.
        Index("ix_audit_entity_id", "entity_id", "entity"),
        # One position per place in a chain: two writers that raced past the tail lock could not both commit.
        Index("ux_audit_chain", "chain", "chain_seq", unique=True),
        # The rows a transaction has written but not yet sealed: a handful at any time, so the probe every
        # commit makes is one look into a near-empty index.
        Index("ix_audit_unsealed", "id", sqlite_where=text("chain_seq IS NULL"),
              postgresql_where=text("chain_seq IS NULL")),
        # The audit page's newest-first walks, one per filter, each in the page's (at, id) order so a page
        # (and the next, by key) stops after 50 rows (migration 0018, web/pages_records.audit). Partial
        # (migration 0035): they leave out a bulk link's rows (format 3, LINK_MARK), which were nearly all of
        # their entries and cost ≈ 0.135 s of CPU per 100,000-row write on SQLite for the three. A link's rows
        # share their program, entity, actor and instant (core/bulk.py), so the page finds them through their
        # link's first row instead (web/pages_records._linked_keys).
        Index("ix_audit_program_at", "program_id", "at", "id", sqlite_where=text(NOT_LINKED),
              postgresql_where=text(NOT_LINKED)),
        Index("ix_audit_entity_at", "entity", "at", "id", sqlite_where=text(NOT_LINKED),
              postgresql_where=text(NOT_LINKED)),
        Index("ix_audit_actor_at", "actor", "at", "id", sqlite_where=text(NOT_LINKED),
              postgresql_where=text(NOT_LINKED)),
        # The unfiltered walk (and a district reviewer's, which checks each row's scope as it goes). On (at)
        # alone PostgreSQL had to read every row of one instant to order them by id — a bulk decision writes
        # 100,000 rows at one instant — before the first of a page (migration 0026; SQLite's (at) index
        # already ended in the rowid, the id).
        Index("ix_audit_at_id", "at", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    # Neither a foreign key nor indexed (migration 0005). An audit trail must not depend on the rows it
    # describes, and it is written 100,000 rows at a time (PostgreSQL's per-row foreign-key check cost
    # 0.3-0.5 s per 100,000). The audit page walks the time index and compares the program as it goes
    # (web/pages_records.audit); a selective filter (one entity, a rare user) has its own index.
    program_id: int | None = None
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=64)
    action: str = Field(max_length=48)
    from_state: str | None = Field(default=None, max_length=40)
    to_state: str | None = Field(default=None, max_length=40)
    actor: str = Field(max_length=64)  # indexed by ix_audit_actor_at (it replaced the index on actor alone)
    role: Role = Field(sa_column=Column(EnumString(Role), nullable=False))
    reason: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    # The chain this row belongs to (its program's id; 0 for rows of no program: users, the clock, calendars),
    # its place in it (1, 2, …) and sha256(previous row's chain_hash + this row's content). None until sealed.
    chain: int | None = None
    chain_seq: int | None = None
    chain_hash: str | None = Field(default=None, max_length=64)


class AuditChainHead(SQLModel, table=True):
    """Each chain's newest place and hash, moved forward by the transaction that appends to the chain.

    Why a row of its own: a chain proves every row against the one before it, but not that rows were cut off
    its end — deleting the newest rows leaves a shorter chain that verifies. The head remembers how long the
    chain is (`verify_chain` names a chain shorter than its head), and its row lock is the chain's append lock:
    the writer holds it from taking its places to its commit, so two writers never take the same places. On
    PostgreSQL a trigger refuses moving a head backwards or deleting it (migration 0018).
    """

    chain: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int
    hash: str = Field(max_length=64)


class AuditLink(SQLModel, table=True):
    """Format 3's links (models/audit.py, LINK_MARK): one row per bulk write, proving the audit rows at places
    `first_seq` … `last_seq` of `chain` (rows whose own `chain_hash` is NULL) with one sha256, `hash`.

    Why a table of its own: the rows can then be written by the same plain `INSERT … SELECT` as unsealed rows and
    read back as stored (RETURNING) to be hashed, and the link stored after them without updating any audit row —
    the audit table stays insert-only. `locators` only name a row inside a link the hash proves broken. Insert-only
    too: on PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE (migration 0033); a removed or edited link
    breaks verification at its first row (core/audit_chain.py).
    """

    chain: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    first_seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last_seq: int
    hash: str = Field(max_length=64)
    locators: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AuditLinkMixed(SQLModel, table=True):
    """A format-3 link written before migration 0035 whose rows differ in program, entity, user or instant.

    Why: the audit page's filter indexes leave out link rows (0035) and reach them through each link's first row,
    which holds only when every row of the link shares those values — as every writer since 0035 ensures
    (core/bulk.py `_alike_runs`). Before it, `write_audit` linked any 500 records of one chain; migration 0035 lists
    those whose rows differ here, once, and the page reads their rows one by one (web/pages_records.py). Nothing
    writes to it after the migration. Not evidence: `verify` never reads it.
    """

    chain: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    first_seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})


# What a row's hash covers, in this order: everything a person could want to forge.
CONTENT_COLUMNS = ("id", "program_id", "entity", "entity_id", "action", "from_state", "to_state", "actor", "role",
                   "reason", "data", "at")
GENESIS = "0" * 64  # the "previous hash" of a chain's first row


def chain_of(program_id: int | None) -> int:
    """One chain per program, one for rows of no program (users, the clock, the calendar)."""
    return program_id or 0


def content_bytes(chain_seq: int, values: Sequence[Any]) -> bytes:
    """A row's content as unambiguous bytes: its place in the chain and CONTENT_COLUMNS' values as stored.

    Values are what the database stores, read without type conversion (core/audit_chain.py): ints, None and
    strings only — the JSON document's text, the enum's value, the time as UTC text. Encoded as a JSON array,
    so a string can never read as two.
    """
    return _ENCODE([chain_seq, *values]).encode()


# json's C encoder, compact and unescaped; for numbers, nulls and strings the text is fixed by the values.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def link_hash(previous: str, content: bytes) -> str:
    """The chain's link: sha256 over the previous row's hash and this row's content, as hex."""
    return hashlib.sha256(previous.encode("ascii") + content).hexdigest()


class Same:
    """A value every row of a bulk write shares (its fragment of the hashed text is built once)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _fragment(value: Any) -> str:
    """A value as `content_bytes`' JSON writes it (`JSONEncoder(ensure_ascii=False)`: its C encoder calls
    `encode_basestring` for strings and `int.__repr__` for ints)."""
    if value is None:
        return "null"
    if type(value) is int:
        return int.__repr__(value)
    if type(value) is str:
        return str(encode_basestring(value))
    return _ENCODE(value)


def _alike(values: Sequence[Any]) -> bool:
    """Every value the same value of the same type (so the same JSON)."""
    return list(values).count(values[0]) == len(values) and len(set(map(type, values))) == 1  # 1 == True, not as JSON


def chain_links(previous: str, after_seq: int, columns: Sequence[Sequence[Any] | Same]) -> list[str]:
    """The hashes of rows appended after place `after_seq` (whose hash is `previous`), in order.

    `columns` are CONTENT_COLUMNS' values as stored, one sequence per column or a `Same` for a value every row
    shares. The same bytes as `content_bytes` + `link_hash` row by row (tests/models/test_audit_links.py), without
    building a list and running the JSON encoder per row: this is the whole cost of sealing 100,000 rows as they
    are written, about a microsecond a row.
    """
    parts = _parts(columns)
    sha256, join = hashlib.sha256, ",".join
    links: list[str] = []
    append = links.append
    rows = len(next(c for c in columns if not isinstance(c, Same)))
    for seq, row in zip(range(after_seq + 1, after_seq + 1 + rows), zip(*parts, strict=False), strict=False):
        previous = sha256(f"{previous}[{seq},{join(row)}]".encode()).hexdigest()
        append(previous)
    return links


# Format 2, a bulk link (session 12): a bulk write's rows share one sha256 link instead of one each.
#
# Format 1 (every row): chain_hash = sha256(previous hash + the row's content_bytes), 64 hex characters. A Python
# `sha256().hexdigest()` costs ~0.55 µs a call whatever the length, about half of sealing a row as it is written.
# Format 2 (the rows of one bulk statement, or of one slice of it, two or more): the LAST row's chain_hash is
# sha256(previous hash + BULK_MARK + the rows' bodies joined by "\n"), 64 hex characters — one call over all of
# them; every other row's chain_hash is a LOCATOR, crc32 of its own body as 8 hex characters. A body is
# `content_bytes` without its brackets: JSON escapes every newline, so the join is unambiguous, and the mark makes
# a bulk link's input differ from any format-1 input (which starts with "[" after the previous hash).
#
# Tamper evidence is the sha256 link alone: an edited, inserted or renumbered row changes the bytes the last row's
# hash covers, and that hash is chained on as before (the next link, the head, the recorded heads). A crc32 is no
# evidence — anyone can recompute one — so a locator only *names* the row inside a link the sha256 already proves
# broken: the first row whose body no longer gives its locator (an editor who also fixed the locator gets the
# link's last row named instead; the chain is reported broken either way). A reader tells the formats apart by
# the hash's length: a 64-character hash after locators ends a bulk link; one after a 64-character hash is a
# format-1 row. Rows written before format 2 keep verifying as they are; nothing is rewritten.
BULK_MARK = b"\x00bulk2\x00"
LOCATOR_LENGTH = 8


def locator(body: bytes) -> str:
    """A row's place-finder inside a bulk link: crc32 of its body, 8 hex characters (see BULK_MARK's comment)."""
    return f"{zlib.crc32(body):08x}"


def row_body(chain_seq: int, values: Sequence[Any]) -> bytes:
    """`content_bytes` without the array's brackets: what a bulk link joins and a locator covers."""
    return content_bytes(chain_seq, values)[1:-1]


def bulk_link(previous: str, bodies: Iterable[bytes]) -> str:
    """The last row's hash of a bulk link: sha256 over the previous hash, the mark and the rows' bodies."""
    return hashlib.sha256(previous.encode("ascii") + BULK_MARK + b"\n".join(bodies)).hexdigest()


def bulk_seals(previous: str, after_seq: int, columns: Sequence[Sequence[Any] | Same]) -> tuple[str, str]:
    """One bulk link over the rows appended after place `after_seq` (whose hash is `previous`): every row's
    locator but the last's, as one string of 8 hex characters a row, and the link (the last row's hash).

    The same bytes as `row_body` row by row (tests/models/test_audit_links.py); every per-row step is a C-level
    `map` or one `struct.pack`, no Python call per row. Two rows at least (a bulk link has two or more)."""
    parts = _parts(columns)
    rows = len(next(c for c in columns if not isinstance(c, Same)))
    if rows < 2:
        raise ValueError("a bulk link has two rows or more")
    seqs = map(int.__repr__, range(after_seq + 1, after_seq + 1 + rows))
    bodies = list(map(str.encode, map(",".join, zip(seqs, *parts, strict=False))))
    locators = struct.pack(f">{rows - 1}I", *map(zlib.crc32, bodies[:-1])).hex()
    return locators, bulk_link(previous, bodies)


def split_locators(locators: str) -> list[str]:
    """`bulk_seals`' locators one a row."""
    return [locators[i:i + LOCATOR_LENGTH] for i in range(0, len(locators), LOCATOR_LENGTH)]


def _parts(columns: Sequence[Sequence[Any] | Same]) -> list[Iterable[str]]:
    """Each column's JSON fragments, per row (or one fragment repeated, for consecutive shared values)."""
    if not any(not isinstance(c, Same) for c in columns):
        raise ValueError("no per-row column: the rows cannot be counted")
    parts: list[Iterable[str]] = []
    pending: list[str] = []  # fragments of consecutive shared values, joined once
    for column in columns:
        if not isinstance(column, Same) and column and _alike(column):
            column = Same(column[0])  # e.g. every reason None: one fragment, not one per row
        if isinstance(column, Same):
            pending.append(_fragment(column.value))
            continue
        if pending:
            parts.append(repeat(",".join(pending)))
            pending = []
        kinds = set(map(type, column))
        parts.append(map(int.__repr__, column) if kinds == {int} else map(encode_basestring, column)
                     if kinds == {str} else map(_fragment, column))
    if pending:
        parts.append(repeat(",".join(pending)))
    return parts


# Format 3, a link row (session 13): a bulk write's rows carry no hash at all (`chain_hash` NULL, `chain_seq` set);
# one `AuditLink` row proves places first_seq … last_seq. Its hash is sha256(previous hash + LINK_MARK + the rows'
# CANONICAL text), where the canonical text is built column by column, not row by row: a header "first_seq,n",
# then for each of CONTENT_COLUMNS in order "=" + the value's JSON if every row stores the same value (as a bulk
# transition's entity, action, states, actor, role, data and time are), else "*" + the JSON array of every row's
# value — lines joined by "\n" (JSON escapes every newline). It is a function of the stored rows alone, so verify
# rebuilds it from what it reads; it is injective (the header fixes n, each line says which form it has). Writing
# it costs a few C-level calls per column instead of a Python join per row: format 2's ~0.10 s per 100,000 rows
# becomes 0.02-0.05 s (measured alone, session 13). A column of consecutive ints (the ids) is written "+" and its
# first value. The locators name a row inside a broken link: a 2-byte mask of the "*" columns and one of the "+"
# columns, then per row crc32 over its "*" values (crc32 chained column to column, one C-level `map` per column);
# a row whose "=" column differs from the link's other rows, or whose "+" value is out of its run, is named by
# that. Tamper evidence is the sha256 alone, as in format 2.
LINK_MARK = b"\x00link3\x00"


def _column_bytes(values: Sequence[Any]) -> Iterable[bytes]:
    """Each value as bytes for a locator (naming only: not the canonical text)."""
    kinds = set(map(type, values))
    if kinds == {str}:
        return map(str.encode, values)
    if kinds == {int}:
        return map(str.encode, map(int.__repr__, values))
    return map(str.encode, map(_fragment, values))


def _run(column: Sequence[Any]) -> bool:
    """Consecutive ascending ints (a `range`, or a list equal to one): format 3 writes them as "+first" alone."""
    if isinstance(column, range):
        return column.step == 1 and len(column) > 1
    return (len(column) > 1 and type(column[0]) is int and type(column[-1]) is int
            and column[-1] - column[0] == len(column) - 1 and list(column) == list(range(column[0], column[-1] + 1)))


def link_seals(previous: str, first_seq: int, columns: Sequence[Sequence[Any] | Same]) -> tuple[str, bytes]:
    """Format 3: the link's hash over rows at places `first_seq` … (CONTENT_COLUMNS' values as stored, one sequence
    per column or a `Same` for a value every row shares), and its locators (see LINK_MARK's comment).

    A column of consecutive ints (the ids, as a bulk write gets them) is written "+" and its first value: a
    `range` costs nothing to encode. The writer passes the values it inserted and read back; verify passes the
    columns of the rows it read: the same stored values give the same bytes whichever side built them
    (tests/models/test_audit_links.py)."""
    n = len(next(c for c in columns if not isinstance(c, Same)))
    lines = [f"{first_seq},{n}"]
    mask = runs = 0
    crcs: Iterable[int] | None = None
    for i, column in enumerate(columns):
        if isinstance(column, Same):
            lines.append("=" + _fragment(column.value))
        elif _run(column):
            lines.append(f"+{column[0]}")
            runs |= 1 << i
        elif n and _alike(column):
            lines.append("=" + _fragment(column[0]))
        else:
            lines.append("*" + _ENCODE(list(column)))
            mask |= 1 << i
            data = _column_bytes(column)
            crcs = map(zlib.crc32, data) if crcs is None else map(zlib.crc32, data, crcs)
    digest = hashlib.sha256(previous.encode("ascii") + LINK_MARK + "\n".join(lines).encode()).hexdigest()
    locators = struct.pack(">HH", mask, runs) + (struct.pack(f">{n}I", *crcs) if crcs is not None else bytes(4 * n))
    return digest, locators


def link_row_locators(mask: int, rows: Sequence[Sequence[Any]]) -> list[int]:
    """Each stored row's locator under a link's mask (verify, naming a row in a broken link)."""
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else []
    crcs: Iterable[int] | None = None
    for i, column in enumerate(columns):
        if mask & (1 << i):
            data = _column_bytes(column)
            crcs = map(zlib.crc32, data) if crcs is None else map(zlib.crc32, data, crcs)
    return list(crcs) if crcs is not None else [0] * len(rows)


def audit_row(record: AuditRecord) -> dict[str, Any]:
    """The insert values of an audit record, for bulk `insert(AuditEvent)` executemany."""
    return {
        "program_id": record.program_id,
        "entity": record.entity,
        "entity_id": str(record.entity_id),
        "action": record.action,
        "from_state": record.from_state,
        "to_state": record.to_state,
        "actor": record.actor,
        "role": record.role,
        "reason": record.reason,
        "data": dict(record.data),
        "at": record.at,
    }

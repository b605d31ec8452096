"""A bulk write hashes its audit rows with `chain_links`, a check reads them back with `content_bytes` and
`link_hash`: both must give the same chain for any stored values, or a sealed row would read as edited."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from models.audit import (
    BULK_MARK,
    CONTENT_COLUMNS,
    GENESIS,
    LINK_MARK,
    Same,
    bulk_link,
    bulk_seals,
    chain_links,
    content_bytes,
    link_hash,
    link_seals,
    locator,
    row_body,
    split_locators,
)

stored = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63), st.text())


@given(st.lists(st.tuples(*[stored for _ in CONTENT_COLUMNS]), min_size=1, max_size=20),
       st.sets(st.integers(min_value=0, max_value=len(CONTENT_COLUMNS) - 1)),
       st.integers(min_value=0, max_value=10**6))
def test_bulk_hashes_equal_the_row_by_row_chain(rows: list[tuple[Any, ...]], shared: set[int], after: int) -> None:
    if len(shared) == len(CONTENT_COLUMNS):
        shared = shared - {0}
    rows = [tuple(rows[0][i] if i in shared else value for i, value in enumerate(row)) for row in rows]
    columns = [Same(rows[0][i]) if i in shared else [row[i] for row in rows] for i in range(len(CONTENT_COLUMNS))]
    expected, previous = [], GENESIS
    for seq, row in enumerate(rows, start=after + 1):
        previous = link_hash(previous, content_bytes(seq, row))
        expected.append(previous)
    assert chain_links(GENESIS, after, columns) == expected


def test_control_characters_quotes_and_chinese_hash_as_the_json_encoder_writes_them() -> None:
    row = (1, 2, "a\"b\\c", "\x00\x1f\u2028\u202e", "审核", None, "", "张三", "system", "\n\t", '{"k": "名"}', "x")
    assert chain_links(GENESIS, 0, [[v] for v in row]) == [link_hash(GENESIS, content_bytes(1, row))]


@given(st.lists(st.tuples(*[stored for _ in CONTENT_COLUMNS]), min_size=2, max_size=20),
       st.sets(st.integers(min_value=0, max_value=len(CONTENT_COLUMNS) - 1)),
       st.integers(min_value=0, max_value=10**6))
def test_a_bulk_link_equals_the_row_by_row_bodies_and_locators(rows: list[tuple[Any, ...]], shared: set[int],
                                                               after: int) -> None:
    """Format 2: what `bulk_seals` writes is what a check recomputes from each stored row with `row_body`."""
    if len(shared) == len(CONTENT_COLUMNS):
        shared = shared - {0}
    rows = [tuple(rows[0][i] if i in shared else value for i, value in enumerate(row)) for row in rows]
    columns = [Same(rows[0][i]) if i in shared else [row[i] for row in rows] for i in range(len(CONTENT_COLUMNS))]
    bodies = [row_body(seq, row) for seq, row in enumerate(rows, start=after + 1)]
    locators, link = bulk_seals(GENESIS, after, columns)
    assert split_locators(locators) == [locator(b) for b in bodies[:-1]]
    assert link == bulk_link(GENESIS, bodies) and len(link) == 64
    assert b"\n" not in b"".join(bodies)  # the join is unambiguous: JSON escapes every newline


def test_a_bulk_links_input_is_never_a_format_1_links_input() -> None:
    row = (1, 2, "a", "b", "c", None, None, "张三", "system", None, "{}", "x")
    assert link_hash(GENESIS, content_bytes(1, row)) != bulk_link(GENESIS, [row_body(1, row)])
    assert not BULK_MARK.startswith(b"[")


@given(st.lists(st.tuples(*[stored for _ in CONTENT_COLUMNS]), min_size=1, max_size=20),
       st.sets(st.integers(min_value=0, max_value=len(CONTENT_COLUMNS) - 1)),
       st.integers(min_value=0, max_value=10**6), st.integers(min_value=-10**6, max_value=10**6))
def test_a_format_3_link_built_by_the_writer_equals_the_one_verify_rebuilds_from_the_stored_rows(
        rows: list[tuple[Any, ...]], shared: set[int], after: int, first_id: int) -> None:
    """Format 3 (LINK_MARK): the writer's columns (values every row shares as `Same`, the ids as a `range`) and
    verify's (every column as the list of stored values) give the same hash and locators; a changed value in any
    row changes the hash."""
    n = len(rows)
    if len(shared) == len(CONTENT_COLUMNS):
        shared = shared - {1}
    rows = [tuple(first_id + k if i == 0 else rows[0][i] if i in shared else value for i, value in enumerate(row))
            for k, row in enumerate(rows)]
    written = [range(first_id, first_id + n) if i == 0 else Same(rows[0][i]) if i in shared
               else [row[i] for row in rows] for i in range(len(CONTENT_COLUMNS))]
    read = [[row[i] for row in rows] for i in range(len(CONTENT_COLUMNS))]
    digest, locators = link_seals(GENESIS, after + 1, written)
    assert (digest, locators) == link_seals(GENESIS, after + 1, read) and len(digest) == 64
    assert len(locators) == 4 + 4 * n
    edited = [list(c) for c in read]
    edited[9][n // 2] = "伪造" if edited[9][n // 2] != "伪造" else None
    assert link_seals(GENESIS, after + 1, edited)[0] != digest
    assert link_seals(GENESIS, after + 2, read)[0] != digest  # the places are covered too


def test_a_format_3_links_input_is_never_a_format_1_or_2_links_input() -> None:
    """After the previous hash, format 1 hashes "[" …, format 2 BULK_MARK …, format 3 LINK_MARK …"""
    assert LINK_MARK != BULK_MARK and not LINK_MARK.startswith(b"[") and b"\n" not in LINK_MARK

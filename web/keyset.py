"""One page of an ordered query by seek (keyset), not OFFSET: see web/pagination.py for why.

The sort key is a tuple of columns ending with a unique one (the id), all in one direction. A page
after a key reads `key > after` in the list's order; a page before a key reads `key < before` in the
reverse order and turns the rows round; the last page reads the reverse order from the end. The
leading column is also bounded on its own (`c0 >= v0`), so the database can start its index walk at
the key even where it would not use a row-value comparison for that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import tuple_

from web.pagination import Key, Page

T = TypeVar("T")
Q = TypeVar("Q")  # a select (SQLAlchemy's or SQLModel's): returned as the same kind


def seek(statement: Q, columns: Sequence[Any], page: Page, *, descending: bool = False,
         values: Callable[[Key], Key] = lambda key: key) -> Q:
    """`query` limited to the page (per_page + 1 rows, to know whether more exist in the reading direction).

    `values` turns a cursor's JSON values back into the columns' types (e.g. ISO text into datetimes).
    """
    query: Any = statement
    backwards = page.backwards
    ordered = [c.desc() if descending != backwards else c.asc() for c in columns]
    key: Key | None = None
    if page.after is not None:
        key = values(page.after)
    elif page.before is not None:
        key = values(page.before)
    if key is not None:
        if len(key) != len(columns):
            from starlette.exceptions import HTTPException

            raise HTTPException(400, "翻页位置无效，请从第一页重新翻页 / bad page cursor: start again from page 1")
        later = descending == backwards  # the rows wanted sort after the key in ascending terms
        lead = columns[0] >= key[0] if later else columns[0] <= key[0]
        rest = tuple_(*columns) > tuple_(*key) if later else tuple_(*columns) < tuple_(*key)
        query = query.where(lead, rest)
    query = query.order_by(None).order_by(*ordered)
    if not page.seek and page.offset:
        query = query.offset(page.offset)  # a shallow page by number (page_of refuses deep ones)
    limited: Q = query.limit(page.per_page + 1)
    return limited


def in_order(rows: Sequence[T], page: Page) -> list[T]:
    """The page's rows in the list's order (a backwards read turned round), without the probe row."""
    shown = list(rows[:page.per_page])
    if page.backwards:
        shown.reverse()
    return shown

"""Page numbers and seek cursors from the query string, and links that keep the page's filters.

Deep pages are read by *keyset* (seek): the 下一页 link carries the last row's sort key (`after=`), the
上一页 link the first row's (`before=`), and the database starts its ordered index walk at that key and
stops after one page. OFFSET would make it read and throw away every row before the page: at 100,000
institutions the laggards' page 200 took 1.2 s that way (issue #19). A page asked for by number
without a cursor is served by OFFSET only while it is shallow (SHALLOW_PAGES); the last page is read
backwards from the end (`last=1`). Every key ends with the row's id, so rows with equal sort values
are neither skipped nor repeated across pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException

PER_PAGE = 50
MAX_PER_PAGE = 200
SHALLOW_PAGES = 20  # pages reachable by number through OFFSET (at most 20 × 200 rows read and skipped)

Key = tuple[Any, ...]


def encode_key(key: Sequence[Any]) -> str:
    """A sort key as a URL-safe token (JSON of its values: text, numbers, ISO dates)."""
    raw = json.dumps([v.isoformat() if hasattr(v, "isoformat") else v for v in key], ensure_ascii=False,
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_key(token: str) -> Key:
    """The values of a token made by encode_key (dates stay ISO text: the page converts them); 400 when damaged."""
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(400, "翻页位置无效，请从第一页重新翻页 / bad page cursor: start again from page 1") from exc
    if not isinstance(values, list) or not values or not all(isinstance(v, str | int) for v in values):
        raise HTTPException(400, "翻页位置无效，请从第一页重新翻页 / bad page cursor: start again from page 1")
    return tuple(values)


@dataclass(frozen=True)
class Page:
    number: int  # 1-based (shown; with a cursor it is carried along by the links, not used to read)
    per_page: int
    total: int | None  # None when not counted (only "is there a next page" is known)
    path: str
    params: tuple[tuple[str, str], ...]  # the filters, kept in every link
    more: bool = False  # a next page exists (when total is None)
    after: Key | None = None  # this page starts after this key (from 下一页)
    before: Key | None = None  # this page ends before this key (from 上一页)
    last: bool = False  # the last page, read backwards from the end (末页)
    first_key: Key | None = None  # the first and last row's keys: the links to the neighbouring pages
    last_key: Key | None = None
    more_before: bool | None = None  # read backwards: whether rows exist before this page
    keyset: bool = False  # deep pages by key only (page_of(keyset=True))

    @property
    def offset(self) -> int:
        """Rows before this page: only for shallow pages asked for by number (see seek)."""
        return (self.number - 1) * self.per_page

    @property
    def seek(self) -> bool:
        """Whether this page is read from a key (or from the end) rather than by OFFSET."""
        return self.after is not None or self.before is not None or self.last

    @property
    def backwards(self) -> bool:
        return self.before is not None or self.last

    @property
    def pages(self) -> int | None:
        return None if self.total is None else max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        if self.total is None and self.backwards and self.more_before is not None:
            return self.more_before
        return self.number > 1

    @property
    def has_next(self) -> bool:
        if self.last:
            return False
        pages = self.pages
        if pages is not None:
            return self.number < pages
        return True if self.before is not None else self.more  # back from the page after this one, or probed

    @property
    def first_item(self) -> int:
        return self.offset + 1

    def _link(self, extra: list[tuple[str, str]]) -> str:
        params = [*self.params, *extra]
        if self.per_page != PER_PAGE:
            params.append(("per_page", str(self.per_page)))
        return f"{self.path}?{urlencode(params)}"

    def url(self, number: int) -> str:
        """Page `number` by number: links to the first page and to shallow pages (deep ones go through keys)."""
        return self._link([("page", str(number))])

    @property
    def prev_url(self) -> str:
        if self.number <= 2 or self.first_key is None:
            return self.url(max(1, self.number - 1))
        return self._link([("page", str(self.number - 1)), ("before", encode_key(self.first_key))])

    @property
    def next_url(self) -> str:
        if self.last_key is None:
            return self.url(self.number + 1)
        return self._link([("page", str(self.number + 1)), ("after", encode_key(self.last_key))])

    @property
    def last_url(self) -> str:
        return self._link([("page", str(self.pages or 1)), ("last", "1")])

    @property
    def self_url(self) -> str:
        """This very page again (the `back` of a form on it)."""
        if self.after is not None:
            return self._link([("page", str(self.number)), ("after", encode_key(self.after))])
        if self.before is not None:
            return self._link([("page", str(self.number)), ("before", encode_key(self.before))])
        if self.last:
            return self.last_url
        return self.url(self.number)

    @property
    def jump_pages(self) -> int:
        """The highest page the 跳至 form may ask for by number (deeper ones: 下一页 or 末页)."""
        return min(self.pages or SHALLOW_PAGES, SHALLOW_PAGES) if self.keyset else (self.pages or 1)

    def export_url(self, fmt: str) -> str:
        """The same filters as a file (web/exports.py): every matching row, not this page's."""
        return f"{self.path}?{urlencode([*self.params, ('format', fmt)])}"

    def counted(self, total: int) -> Page:
        return replace(self, total=total)

    def probed(self, fetched: int) -> Page:
        """With `per_page + 1` rows fetched: whether a next page exists, without counting every row."""
        return replace(self, total=None, more=fetched > self.per_page)

    def keyed(self, keys: Sequence[Key], fetched: int) -> Page:
        """After reading the page (`keys` of its rows in order, `fetched` rows read: per_page + 1 tells
        that one more exists in the reading direction): the keys its 上一页 and 下一页 links carry."""
        more = fetched > self.per_page
        first, last = (keys[0], keys[-1]) if keys else (None, None)
        if self.backwards:
            return replace(self, first_key=first, last_key=last, more_before=more, more=True)
        return replace(self, first_key=first, last_key=last, more=more)


def _int(params: QueryParams, name: str, default: int) -> int:
    value = params.get(name)
    if value in (None, ""):
        return default
    try:
        return int(str(value))
    except ValueError as exc:
        raise HTTPException(400, f"{name} 应为正整数：{value}") from exc


def page_of(path: str, params: QueryParams, filters: dict[str, str], *, keyset: bool = False,
            deep_numbers: bool = False) -> Page:
    """The requested page (400 for a page number that is not a positive integer); `filters` go into links.

    With `keyset`, `after` / `before` / `last=1` are read, and a deep page asked for by number alone is
    refused: nothing may make the database skip tens of thousands of rows. `deep_numbers`: this list
    serves any page by number without skipping rows in the database (a gate's items, sliced from the
    parsed list), so numbers are not refused and the 跳至 form reaches every page.
    """
    number = _int(params, "page", 1)
    per_page = min(_int(params, "per_page", PER_PAGE), MAX_PER_PAGE)
    if number < 1 or per_page < 1:
        raise HTTPException(400, "页码和每页条数应为正整数")
    kept = tuple((k, v) for k, v in filters.items() if v)
    if not keyset:
        return Page(number, per_page, None, path, kept)
    after = decode_key(str(params["after"])) if params.get("after") else None
    before = decode_key(str(params["before"])) if params.get("before") and after is None else None
    last = params.get("last") == "1" and after is None and before is None
    if after is None and before is None and not last and number > SHALLOW_PAGES and not deep_numbers:
        raise HTTPException(400, f"第 {number} 页太靠后，不能按页码直接打开：请用“下一页”“末页”翻页，或用筛选条件缩小范围 / "
                                 f"page {number} is too deep to open by number: use 下一页 / 末页 or narrow the filters")
    return Page(number, per_page, None, path, kept, after=after, before=before, last=last, keyset=not deep_numbers)

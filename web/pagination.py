"""Page numbers from the query string, and links that keep the page's filters."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException

PER_PAGE = 50
MAX_PER_PAGE = 200


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    per_page: int
    total: int | None  # None when not counted (only "is there a next page" is known)
    path: str
    params: tuple[tuple[str, str], ...]  # the filters, kept in every link
    more: bool = False  # a next page exists (when total is None)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page

    @property
    def pages(self) -> int | None:
        return None if self.total is None else max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        pages = self.pages
        return self.more if pages is None else self.number < pages

    @property
    def first_item(self) -> int:
        return self.offset + 1

    def url(self, number: int) -> str:
        params = [*self.params, ("page", str(number))]
        if self.per_page != PER_PAGE:
            params.append(("per_page", str(self.per_page)))
        return f"{self.path}?{urlencode(params)}"

    def export_url(self, fmt: str) -> str:
        """The same filters as a file (web/exports.py): every matching row, not this page's."""
        return f"{self.path}?{urlencode([*self.params, ('format', fmt)])}"

    def counted(self, total: int) -> Page:
        return Page(self.number, self.per_page, total, self.path, self.params)

    def probed(self, fetched: int) -> Page:
        """With `per_page + 1` rows fetched: whether a next page exists, without counting every row."""
        return Page(self.number, self.per_page, None, self.path, self.params, more=fetched > self.per_page)


def _int(params: QueryParams, name: str, default: int) -> int:
    value = params.get(name)
    if value in (None, ""):
        return default
    try:
        return int(str(value))
    except ValueError as exc:
        raise HTTPException(400, f"{name} 应为正整数：{value}") from exc


def page_of(path: str, params: QueryParams, filters: dict[str, str]) -> Page:
    """The requested page (400 for a page number that is not a positive integer); `filters` go into links."""
    number = _int(params, "page", 1)
    per_page = min(_int(params, "per_page", PER_PAGE), MAX_PER_PAGE)
    if number < 1 or per_page < 1:
        raise HTTPException(400, "页码和每页条数应为正整数")
    kept = tuple((k, v) for k, v in filters.items() if v)
    return Page(number, per_page, None, path, kept)

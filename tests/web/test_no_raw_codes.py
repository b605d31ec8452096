"""No page shows a person a raw code (`start_running`, `city_approve`, `escalation`): every code goes through the labels.

Every page is rendered for the manager after a batch ran its whole way (district and city decisions, the
list published, notices written) and with one notice of each kind in the outbox.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from sqlalchemy import select
from sqlmodel import Session
from starlette.testclient import TestClient

from models import labels
from models.catalog import ListVersion
from models.enrollment import Gate
from models.outbox import Notice
from models.states import NoticeStatus
from tests.web.conftest import SLUG, World
from tests.web.test_pages import _run_to_published_list

# Every code the catalog names: a cell or line that is exactly one of these is a code shown to a person.
CODES = {code for name, table in vars(labels).items() if name.isupper() and isinstance(table, dict)
         for code in table if name != "ENTITY_STATE_LABELS"}
SNAKE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")  # a snake_case word anywhere in visible text is a code too


class _VisibleText(HTMLParser):
    """The text a person reads: no tags, attributes, scripts or styles."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.chunks.append(data.strip())


def _raw_codes(html: str) -> list[str]:
    parser = _VisibleText()
    parser.feed(html)
    found = []
    for chunk in parser.chunks:
        first = chunk.split(" #")[0].strip("：:（）() ")
        if first in CODES:
            found.append(chunk)
        found.extend(m for m in SNAKE.findall(chunk) if m in CODES)
    return found


def test_no_page_shows_a_raw_code(world: World, client: TestClient) -> None:
    _run_to_published_list(world, client)
    with Session(world.engine) as session:
        for kind in labels.NOTICE_KIND_LABELS:
            session.add(Notice(idempotency_key=f"raw-code-{kind}", kind=kind, recipient_type="institution",
                               recipient_name="测试机构", email=None, status=NoticeStatus.NO_ADDRESS,
                               created_at=world.clock.now()))
        session.commit()
        version = session.execute(select(ListVersion.id)).scalars().first()
        gates = session.execute(select(Gate.id)).scalars().all()
    pages = ["/", f"/programs/{SLUG}", f"/programs/{SLUG}/lists", f"/programs/{SLUG}/laggards", "/inbox",
             "/notices", "/notices?status=no_address", "/audit", f"/audit?program={SLUG}&entity=application",
             f"/lists/{version}", *(f"/gates/{g}" for g in gates)]
    shown = {}
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        if raw := _raw_codes(response.text):
            shown[path] = sorted(set(raw))[:10]
    assert not shown, f"raw codes shown to a person: {shown}"

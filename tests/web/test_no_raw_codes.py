"""No page shows a person a raw code (`start_running`, `city_approve`, `escalation`): every code goes through the labels.

Every page is rendered for the manager after a batch ran its whole way (district and city decisions, the
list published, notices written) and with one notice of each kind in the outbox.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select
from sqlmodel import Session
from starlette.testclient import TestClient

from models import labels
from models.catalog import ListVersion
from models.enrollment import Gate
from models.outbox import Notice
from models.states import NoticeStatus
from tests.web.conftest import SLUG, World, sign_in
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
        _violations_of_every_rule(session, world)
        session.commit()
        version = session.execute(select(ListVersion.id)).scalars().first()
        gates = session.execute(select(Gate.id)).scalars().all()
    pages = ["/", f"/programs/{SLUG}", f"/programs/{SLUG}/lists", f"/programs/{SLUG}/laggards", "/inbox",
             "/notices", "/notices?status=no_address", "/audit", f"/audit?program={SLUG}&entity=application",
             f"/lists/{version}", *(f"/gates/{g}" for g in gates), "/violations", f"/violations?program={SLUG}"]
    # and what the pages export: the same rows as files (issue #19)
    exports = [f"/programs/{SLUG}/lists?format=csv", f"/programs/{SLUG}/laggards?format=csv", "/notices?format=csv",
               "/audit?format=csv", "/inbox?format=csv", *(f"/gates/{g}?format=csv" for g in gates),
               "/violations?format=csv"]
    logins = set(world.reviewers.values())
    shown = {}
    for path in pages + exports:
        response = client.get(path)
        assert response.status_code == 200, path
        text = response.text if "format=" not in path else _as_html(response.content.decode("utf-8-sig"))
        raw = _raw_codes(text) + [name for name in logins if name in _visible(text)]
        if raw:
            shown[path] = sorted(set(raw))[:10]
    assert not shown, f"raw codes or login names shown to a person: {shown}"


def test_a_reviewer_without_a_display_name_never_reads_a_login_name(world: World, client: TestClient) -> None:
    """The header names the signed-in person by unit and role when no display name was given (issue #19)."""
    login = world.reviewers["和平区"]
    sign_in(client, login)
    for path in ("/", "/inbox", "/notices", "/audit", f"/programs/{SLUG}/laggards", "/violations"):
        response = client.get(path)
        assert response.status_code == 200, path
        visible = _visible(response.text)
        assert login not in visible, path
        assert "和平区医疗保障局" in visible, path


def _violations_of_every_rule(session: Session, world: World) -> None:
    """One open and one closed violation of each rule, by each kind of subject: the violations page shows them all."""
    from datetime import timedelta

    from models.compliance.codes import CLOSE_REASONS, SubjectType, ViolationRule, ViolationState
    from models.enrollment import Application
    from models.operations import Violation

    app = session.get(Application, world.apps[0])
    assert app is not None
    today = world.clock.today()
    for n, rule in enumerate(ViolationRule):
        for state in ViolationState:
            closed = state == ViolationState.CLOSED
            session.add(Violation(program_id=world.program.id or 0, rule=rule, subject_type=SubjectType.INSTITUTION,
                                  subject_id=app.institution_id, object_key=f"{n}-{state.value}", district="和平区",
                                  state=state, evidence={"说明": "标签测试"}, detected_on=today - timedelta(days=n),
                                  detected_at=world.clock.now() - timedelta(days=n),
                                  closed_on=today if closed else None,
                                  closed_reason=CLOSE_REASONS.get(rule) if closed else None))


def _visible(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(parser.chunks)


def _as_html(csv_text: str) -> str:
    """A CSV's cells as table cells, so the same check reads them."""
    import csv
    import io
    from html import escape

    return "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in csv.reader(io.StringIO(csv_text)))


LETTERHEAD = {"issuer_office": "沈阳市医疗保障局", "document_number": "沈医保函〔2025〕1042号",
              "contact_name": "价格招采处 王科长", "contact_phone": "024-22856712"}


@pytest.mark.parametrize("kind", sorted(labels.NOTICE_KIND_LABELS))
def test_no_letter_shows_a_raw_code(kind: str) -> None:
    """Every letter template, rendered as sent: subject, text and HTML say words, never codes."""
    from notifications.render import render_notice
    from tests.notifications.samples import sample

    rendered = render_notice(kind, {**sample(kind), **LETTERHEAD}, strict=True)
    found = {part: raw for part, raw in (
        ("subject", _raw_codes(f"<p>{rendered.subject}</p>")),
        ("text", _raw_codes("".join(f"<p>{line}</p>" for line in rendered.text.splitlines()))),
        ("html", _raw_codes(rendered.html))) if raw}
    assert not found, f"{kind}: raw codes in the letter: {found}"


def test_the_check_catches_a_raw_code_in_a_letter() -> None:
    """The check itself can fail: a code in a cell or inside a sentence is found."""
    assert set(_raw_codes("<td>start_running</td>")) == {"start_running"}
    assert _raw_codes("<p>结果：city_approve。</p>") == ["city_approve"]
    assert _raw_codes("<p>已批准</p>") == []

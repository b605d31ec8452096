"""Deep pages are read by key (issue #19): 下一页 carries the last row's key, and every page by key holds the rows
that OFFSET would have shown — none skipped, none repeated, even where many rows share every sort value but the id."""

from __future__ import annotations

import html
import re
from datetime import date

from starlette.testclient import TestClient

from models.states import InstitutionKind, Role
from tests.factories import ensure_user, make_enterprise
from tests.tasks.test_reminders import _account, _contract, _running
from tests.web.conftest import PASSWORD, SLUG, World, sign_in

NEXT = re.compile(r'<a href="([^"]+)" rel="next">')
PREV = re.compile(r'<a href="([^"]+)" rel="prev">')
ROW = re.compile(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>")


def _laggards(world: World) -> None:
    """Ties on every sort value but the id: the same deadline, district and kind, across two districts and both kinds."""
    enterprise = make_enterprise(world.engine)
    for i, district in enumerate(["和平区"] * 7 + ["沈河区"] * 4):
        inst = _running(world.engine, world.program, district=district, kind=InstitutionKind.CHAIN_PHARMACY)
        due = date(2025, 9, 10) if i % 3 else date(2025, 9, 5)
        _account(world.engine, world.program, inst, due)
        if i % 2:
            _contract(world.engine, world.program, inst, enterprise, due)


def _walk(client: TestClient, url: str) -> tuple[list[tuple[str, ...]], list[str]]:
    rows: list[tuple[str, ...]] = []
    urls = []
    while url:
        urls.append(url)
        page = client.get(url)
        assert page.status_code == 200, page.text[-300:]
        rows += ROW.findall(page.text.split("<tbody>")[1].split("</tbody>")[0])
        found = NEXT.search(page.text)
        url = html.unescape(found.group(1)) if found else ""
    return rows, urls


def test_every_laggard_page_by_key_holds_what_offset_would_show_with_ties_broken_by_id(world: World,
                                                                                     client: TestClient) -> None:
    _laggards(world)
    sign_in(client, "manager")
    everything = ROW.findall(client.get(f"/programs/{SLUG}/laggards?per_page=200").text.split("<tbody>")[1])
    assert len(everything) == 11 + 5  # 11 accounts and 5 contracts
    by_key, urls = _walk(client, f"/programs/{SLUG}/laggards?per_page=3")
    assert by_key == everything  # same rows, same order, none repeated or skipped
    assert any("after=" in u for u in urls[1:])  # the deep pages were read by key, not by number
    back = client.get(urls[-1]).text  # and 上一页 from the last page shows the page before it
    previous = html.unescape(PREV.search(back).group(1))
    on_last = len(everything) % 3 or 3
    assert ROW.findall(client.get(previous).text.split("<tbody>")[1]) == everything[-on_last - 3:-on_last]
    last = ROW.findall(client.get(f"/programs/{SLUG}/laggards?per_page=3&last=1").text.split("<tbody>")[1])
    assert last == everything[-on_last:]


def test_a_district_reviewer_pages_only_its_districts_laggards_and_exports_the_same(world: World,
                                                                                   client: TestClient) -> None:
    _laggards(world)
    ensure_user(world.engine, world.reviewers["沈河区"], Role.DISTRICT_REVIEWER, districts=["沈河区"], password=PASSWORD)
    sign_in(client, world.reviewers["沈河区"])
    rows, _ = _walk(client, f"/programs/{SLUG}/laggards?per_page=2")
    assert len(rows) == 4 + 2 and {r[1] for r in rows} == {"沈河区"}
    exported = client.get(f"/programs/{SLUG}/laggards?format=csv").content.decode("utf-8-sig").splitlines()[1:]
    assert [tuple(line.split(",")[:3]) for line in exported] == rows  # the file holds what the pages show


def test_a_deep_page_number_without_a_key_is_refused_in_words_and_a_damaged_key_too(world: World,
                                                                                   client: TestClient) -> None:
    sign_in(client, "manager")
    deep = client.get(f"/programs/{SLUG}/laggards?page=200")
    assert deep.status_code == 400 and "下一页" in deep.text
    assert client.get("/audit?page=2&after=not-a-key").status_code == 400
    assert client.get("/notices?page=21").status_code == 400


def test_the_audit_trail_and_the_outbox_by_key_match_offset(world: World, client: TestClient) -> None:
    from tests.web.test_pages import _run_to_published_list

    _run_to_published_list(world, client)
    client.cookies.clear()
    sign_in(client, "manager")
    cell = re.compile(r"<tr>(.*?)</tr>", re.S)
    for path in ("/audit", "/notices"):
        whole = cell.findall(client.get(f"{path}?per_page=200").text.split("<tbody>")[1])
        assert len(whole) > 4, path
        rows: list[tuple[str, ...]] = []
        url = f"{path}?per_page=4"
        while url:
            text = client.get(url).text
            rows += cell.findall(text.split("<tbody>")[1].split("</tbody>")[0])
            found = NEXT.search(text)
            url = html.unescape(found.group(1)) if found else ""
        assert rows == whole, path


def test_a_gates_items_by_key_hold_what_its_whole_list_shows_for_every_filter_both_ways(world: World,
                                                                                      client: TestClient) -> None:
    """下一页 and 上一页 of a gate's items carry the row's key (its position in the gate's list), for every filter:
    walked one item a page, forwards and back from 末页, they hold the single-page list; a damaged or foreign key
    is refused in words; a filter's deep page by number alone is refused, "all" by number is served."""
    from sqlalchemy import update

    from models.enrollment import Application
    from models.states import GateKind
    from web.pagination import encode_key

    gate = world.district_gate("和平区")
    with world.engine.begin() as conn:  # a finding on every other item, so the filter keeps some and skips some
        conn.execute(update(Application).where(Application.id.in_(gate.items[::2]))  # type: ignore[attr-defined]
                     .values(findings=[{"column": "联系电话", "message": "联系电话与机构所在地区号不符"}]))
    sign_in(client, world.reviewers["和平区"])
    item = re.compile(r'<tr id="item-(\d+)">')
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(f"/gates/{gate.id}").text)
    assert token
    decided = client.post(f"/gates/{gate.id}/decide", data={"csrf_token": token.group(1), f"item_{gate.items[1]}":
                                                           "approve", "confirm": "given"})
    assert decided.status_code == 303
    for show in ("", "undecided", "findings", "approved"):
        base = f"/gates/{gate.id}?show={show}" if show else f"/gates/{gate.id}?"
        whole = item.findall(client.get(f"{base}&per_page=200").text)
        forwards: list[str] = []
        url = f"{base}&per_page=1"
        while url:
            text = client.get(url).text
            forwards += item.findall(text)
            found = NEXT.search(text)
            url = html.unescape(found.group(1)) if found else ""
        assert forwards == whole and whole, (show, forwards, whole)
        backwards: list[str] = []
        url = f"{base}&per_page=1&page={len(whole)}&last=1"  # the 末页 link
        while url:
            text = client.get(url).text
            backwards = item.findall(text) + backwards
            found = PREV.search(text)
            url = html.unescape(found.group(1)) if found else ""
            if url and "before=" not in url:  # the first page's link is by number: read it and stop
                backwards = item.findall(client.get(url).text) + backwards
                break
        assert backwards == whole, (show, backwards, whole)
    assert world.gates(GateKind.DISTRICT_REVIEW)
    assert client.get(f"/gates/{gate.id}?show=undecided&after={encode_key([0, 999999])}").status_code == 400
    assert client.get(f"/gates/{gate.id}?show=undecided&after=not-a-key").status_code == 400
    assert client.get(f"/gates/{gate.id}?show=undecided&page=21").status_code == 400
    assert client.get(f"/gates/{gate.id}?page=21").status_code == 200

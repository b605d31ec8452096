"""The violations page (issue #19): every violation with its evidence and its ladder step, by name; filters by rule,
district, institution / enterprise, state and date; a reviewer sees its own districts only; keyset pages newest
first; the same rows as XLSX and CSV; reached from the overview and the navigation bar."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlmodel import Session
from starlette.testclient import TestClient

from models.clock import FixedClock
from models.compliance.codes import SubjectType, ViolationRule, ViolationState
from models.labels import VIOLATION_LABELS
from models.operations import Violation
from tests.factories import make_enterprise, make_institution, make_running_application, shanghai
from tests.web.conftest import SLUG, World, sign_in
from tests.web.test_exports import _csv, _xlsx
from tests.web.test_no_raw_codes import _raw_codes
from web.pages_violations import COLUMNS

ROW = re.compile(r'<tr id="violation-(\d+)"')


def _violations(world: World) -> dict[str, int]:
    """Five violations: two in 和平区 (one on a ladder), one closed in 沈河区, one of an enterprise, one older."""
    engine, program_id = world.engine, world.program.id or 0
    heping = make_institution(engine, district="和平区", name="和平区欠款药房")
    make_running_application(engine, world.program, heping, running_at=shanghai(2025, 9, 1, 9))
    shenhe = make_institution(engine, district="沈河区", name="沈河区高价药房")
    late = make_enterprise(engine, "迟送制药有限公司")
    specs = {
        "payment": (ViolationRule.LATE_PAYMENT, SubjectType.INSTITUTION, heping.id, "和平区", ViolationState.OPEN,
                    date(2025, 11, 3), {"逾期金额(元)": "1200.00", "逾期天数": 35}),
        "few": (ViolationRule.TOO_FEW_DRUGS, SubjectType.INSTITUTION, heping.id, "和平区", ViolationState.OPEN,
                date(2025, 11, 3), {"配备品种数": 12, "承诺品种数": 30}),
        "price": (ViolationRule.SALE_PRICE, SubjectType.INSTITUTION, shenhe.id, "沈河区", ViolationState.CLOSED,
                  date(2025, 11, 1), {"售价(元)": "9.80", "中选价(元)": "8.00"}),
        "delivery": (ViolationRule.DELIVERY_PATTERN, SubjectType.ENTERPRISE, late.id, None, ViolationState.OPEN,
                     date(2025, 10, 30), {"超时配送次数": 5}),
        "old": (ViolationRule.LATE_PAYMENT, SubjectType.INSTITUTION, heping.id, "和平区", ViolationState.CLOSED,
                date(2025, 10, 1), {"逾期金额(元)": "300.00"}),
    }
    ids = {}
    with Session(engine) as session:
        for key, (rule, kind, subject, district, state, day, evidence) in specs.items():
            v = Violation(program_id=program_id, rule=rule, subject_type=kind, subject_id=subject or 0,
                          object_key=key, district=district, state=state, evidence=evidence, detected_on=day,
                          detected_at=shanghai(day.year, day.month, day.day, 9),
                          closed_on=day + timedelta(days=5) if state == ViolationState.CLOSED else None,
                          closed_reason="货款已结清（逾期） / paid in full, late" if state == ViolationState.CLOSED else None)
            session.add(v)
            session.flush()
            ids[key] = v.id or 0
        session.commit()
    from tasks.enforcement.manual import start_ladder

    start_ladder(engine, SLUG, user_name="manager", clock=FixedClock(shanghai(2025, 11, 4, 9)), reason=None,
                 violation_id=ids["payment"])
    return ids


def _ids(html: str) -> list[int]:
    return [int(i) for i in ROW.findall(html)]


def test_the_manager_reads_every_violation_by_name_with_its_evidence_and_its_ladder(world: World,
                                                                                    client: TestClient) -> None:
    ids = _violations(world)
    sign_in(client, "manager")
    page = client.get(f"/violations?program={SLUG}").text
    # newest first by detection time, ties by the later id first
    assert _ids(page) == [ids["few"], ids["payment"], ids["price"], ids["delivery"], ids["old"]]
    row = page.split(f'id="violation-{ids["payment"]}"')[1].split("</tr>")[0]
    assert "和平区欠款药房" in row and "逾期金额(元)：1200.00" in row and "逾期天数：35" in row
    assert "待约谈" in row and 'href="/gates/' in row  # the ladder's step and its open gate
    closed = page.split(f'id="violation-{ids["price"]}"')[1].split("</tr>")[0]
    assert "已消除" in closed and "货款已结清（逾期）" in closed and "paid in full" not in closed
    assert "迟送制药有限公司" in page and "生产企业" in page
    assert not _raw_codes(page)


def test_the_filters_narrow_the_list(world: World, client: TestClient) -> None:
    ids = _violations(world)
    sign_in(client, "observer")

    def shown(query: str) -> set[int]:
        response = client.get(f"/violations?program={SLUG}&{query}")
        assert response.status_code == 200, response.text[-300:]
        return set(_ids(response.text))

    assert shown("rule=late_payment") == {ids["payment"], ids["old"]}
    assert shown("district=沈河区") == {ids["price"]}
    assert shown("subject_type=enterprise") == {ids["delivery"]}
    assert shown("subject=欠款") == {ids["payment"], ids["few"], ids["old"]}
    assert shown("state=closed") == {ids["price"], ids["old"]}
    assert shown("since=2025-11-01&until=2025-11-02") == {ids["price"]}
    assert shown("rule=late_payment&state=open") == {ids["payment"]}
    for bad in ("rule=bogus", "state=maybe", "since=2025-13-01", "after=abc"):
        assert client.get(f"/violations?{bad}").status_code == 400, bad


def test_a_reviewer_sees_only_its_own_districts_violations(world: World, client: TestClient) -> None:
    ids = _violations(world)
    sign_in(client, world.reviewers["沈河区"])
    assert set(_ids(client.get("/violations").text)) == {ids["price"]}  # not 和平区's, not the enterprise's
    assert client.get("/violations?district=和平区").status_code == 403
    rows = _csv(client.get("/violations?format=csv"))
    assert [r[4] for r in rows[1:]] == ["沈河区高价药房"]


def test_keyset_pages_walk_forward_and_back_without_repeating_or_skipping(world: World, client: TestClient) -> None:
    ids = _violations(world)
    order = [ids["few"], ids["payment"], ids["price"], ids["delivery"], ids["old"]]
    sign_in(client, "manager")
    seen, url, pages = [], f"/violations?program={SLUG}&per_page=2", []
    while url:
        html = client.get(url).text
        pages.append(html)
        seen += _ids(html)
        nxt = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else ""
    assert seen == order and len(pages) == 3
    assert f"after={order[1]}" in pages[0] and 'rel="prev"' not in pages[0]
    back = re.search(r'<a href="([^"]+)" rel="prev">', pages[2])
    assert back is not None
    assert _ids(client.get(back.group(1).replace("&amp;", "&")).text) == order[2:4]
    assert "共 5 条" in pages[1]


def test_the_page_downloads_its_rows_and_is_linked_from_the_overview_and_the_navigation(world: World,
                                                                                         client: TestClient) -> None:
    _violations(world)
    sign_in(client, "manager")
    sheet = _xlsx(client.get(f"/violations?program={SLUG}&rule=late_payment&format=xlsx"))
    assert sheet[1] == list(COLUMNS) and len(sheet) == 2 + 2
    assert {r[4] for r in sheet[2:]} == {"和平区欠款药房"} and {r[2] for r in sheet[2:]} == {VIOLATION_LABELS["late_payment"]}
    assert sheet[2][0] == "2025-11-03" and sheet[2][11] == "待约谈" and sheet[3][11] == "未进入处理程序"
    overview = client.get(f"/programs/{SLUG}").text
    assert f'href="/violations?program={SLUG}"' in overview
    assert '<a href="/violations">违规记录</a>' in client.get("/inbox").text

"""Every table page downloads as XLSX and CSV with what it shows (filters and the viewer's scope), names not codes.

Issue #19: laggards, a gate's items, the audit trail and the outbox could not be exported; the audit page
showed "机构申请 #2038" and login names.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import openpyxl
from sqlalchemy import select
from sqlmodel import Session
from starlette.testclient import TestClient

from models.enrollment import Institution
from models.states import InstitutionKind, Role
from tests.factories import ensure_user
from tests.tasks.test_reminders import _account, _running
from tests.web.conftest import PASSWORD, SLUG, World, csrf_of, sign_in
from tests.web.test_pages import _run_to_published_list


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.text[-300:]
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())  # Excel opens UTF-8 with a BOM in Chinese
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def _xlsx(response) -> list[list[str]]:
    assert response.status_code == 200, response.text[-300:]
    assert "attachment" in response.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True).active
    return [["" if c is None else str(c) for c in row] for row in sheet.iter_rows(values_only=True)]


def test_the_laggards_export_holds_every_laggard_of_the_filter_as_the_page_words_it(world: World,
                                                                                   client: TestClient) -> None:
    for district, n in (("和平区", 3), ("沈河区", 2)):
        for _ in range(n):
            inst = _running(world.engine, world.program, district=district, kind=InstitutionKind.CHAIN_PHARMACY)
            _account(world.engine, world.program, inst, date(2025, 9, 10))
    sign_in(client, "manager")
    page = client.get(f"/programs/{SLUG}/laggards?district=和平区&per_page=2").text
    assert 'href="/programs/shenyang-2025/laggards?district=%E5%92%8C%E5%B9%B3%E5%8C%BA&amp;format=xlsx"' in page
    rows = _xlsx(client.get(f"/programs/{SLUG}/laggards?district=和平区&format=xlsx"))
    assert rows[0][0].endswith("进度滞后的机构")  # the title row, then the page's headers
    assert rows[1] == ["机构", "区县", "医保编码", "事项", "截止日期", "滞后"]
    body = rows[2:]
    assert len(body) == 3 and {r[1] for r in body} == {"和平区"}  # every page of the filter, not the 2 shown
    assert {r[3] for r in body} == {"平台账户未注册"} and all(r[5].startswith("逾期 ") for r in body)
    assert len(_csv(client.get(f"/programs/{SLUG}/laggards?format=csv"))) == 1 + 5
    assert client.get(f"/programs/{SLUG}/laggards?format=pdf").status_code == 400


def test_the_audit_trail_names_what_was_acted_on_and_who_and_exports_the_same(world: World,
                                                                              client: TestClient) -> None:
    ensure_user(world.engine, world.reviewers["和平区"], Role.DISTRICT_REVIEWER, districts=["和平区"],
             display_name="李审核", unit="和平区医疗保障局", password=PASSWORD)
    _run_to_published_list(world, client)
    with Session(world.engine) as session:
        names = set(session.scalars(select(Institution.name)).all())
    page = client.get(f"/audit?program={SLUG}&entity=application&per_page=200").text
    assert "李审核（和平区医疗保障局）" in page and world.reviewers["和平区"] + "（" not in page
    assert "机构申请 · " in page and any(name in page for name in names)
    assert "#" not in page.split("<tbody>")[1].split("</tbody>")[0]  # no bare number stands for a record
    by_name = client.get("/audit?actor=李审核").text  # filtered by the name people read, not the login
    assert "李审核（和平区医疗保障局）" in by_name and "没有符合条件的记录" not in by_name
    rows = _csv(client.get(f"/audit?program={SLUG}&entity=application&format=csv"))
    assert rows[0] == ["时间", "对象", "操作", "状态变化", "操作人", "理由"]
    assert any(r[4] == "李审核（和平区医疗保障局）" and r[2] == "区县初审通过" for r in rows[1:])
    assert {r[1].split(" · ")[1] for r in rows[1:] if " · " in r[1]} <= names
    assert all(r[3].count("→") == 1 for r in rows[1:])


def test_a_reviewer_exports_its_own_inbox_and_a_gates_items(world: World, client: TestClient) -> None:
    sign_in(client, world.reviewers["和平区"])
    rows = _xlsx(client.get("/inbox?format=xlsx"))
    assert rows[1][0] == "审批事项" and len(rows) == 3 and rows[2][3] == "和平区"  # its district's gate only
    gate = world.district_gate("和平区")
    items = _csv(client.get(f"/gates/{gate.id}?format=csv"))
    assert items[0][0] == "机构" and len(items) == 1 + len(gate.items)
    assert {r[1] for r in items[1:]} == {"和平区"} and {r[12] for r in items[1:]} == {"待决定"}
    assert client.get(f"/gates/{world.district_gate('沈河区').id}?format=csv").status_code == 403


def test_the_outbox_and_the_lists_export_their_rows_in_chinese(world: World, client: TestClient) -> None:
    _run_to_published_list(world, client)
    rows = _csv(client.get("/notices?format=csv"))
    assert rows[0][:5] == ["编号", "类型", "收件人", "邮箱", "状态"]
    assert len(rows) > 1 and all("_" not in r[1] and "_" not in r[4] for r in rows[1:])
    from models.catalog import ListVersion

    with Session(world.engine) as session:
        version = session.scalars(select(ListVersion)).first()
    assert version is not None
    entries = _xlsx(client.get(f"/lists/{version.id}?format=xlsx"))
    assert entries[1][:3] == ["机构医保编码", "单位名称", "所属区县"] and len(entries) - 2 == version.entry_count
    lists = _csv(client.get(f"/programs/{SLUG}/lists?format=csv"))
    assert lists[0][-2:] == ["发布人", "说明"] and lists[1][0] == "定点机构名单"
    assert "gate" not in " ".join(r[-1] for r in lists[1:]) and "system" not in " ".join(r[-2] for r in lists[1:])


def test_the_manager_prints_the_letters_nobody_can_e_mail_once(world: World, client: TestClient) -> None:
    from tasks.phases.alliance import reconcile_alliance
    from tests.factories import clock_at

    reconcile_alliance(world.engine, SLUG, clock=clock_at(2025, 8, 7, 9))
    sign_in(client, "manager")
    assert "生成打印版" in client.get("/notices").text
    token = csrf_of(client, "/notices")
    first = client.post("/notices/print", data={"program": SLUG, "csrf_token": token})
    assert first.status_code == 200 and first.text.count('<section class="letter">') == 13
    # a paper letter does not call itself an e-mail nor say replies by e-mail are not read
    assert "本邮件" not in first.text and first.text.count("纸质送达") == 13
    assert "unsafe-inline" in first.headers["content-security-policy"]
    assert "script" not in first.headers["content-security-policy"]
    again = client.post("/notices/print", data={"program": SLUG, "csrf_token": token})
    assert again.status_code == 303  # nothing new to print: back to the outbox with a message
    assert "没有待打印的无邮箱通知" in client.get(again.headers["location"]).text
    client.cookies.clear()
    sign_in(client, "observer")
    assert client.post("/notices/print", data={"program": SLUG, "csrf_token": csrf_of(client, "/notices")}
                       ).status_code == 403

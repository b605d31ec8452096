"""Publishing the public lists (SQLite and PostgreSQL): versions on change, exact diffs, safe files, the index."""

from __future__ import annotations

import csv
import io
import re
import threading
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session, col

import tasks.lists.publication
import tasks.lists.versions
from models.catalog import DeclarationItem, Enterprise, EnterpriseDeclaration, ListVersion, Product
from models.enrollment import Application, Institution
from models.program import Program
from models.states import ApplicationState, DeclarationState, EnterpriseState, GateKind, GateState, ListKind
from tasks.gates.deciding import decide_gate
from tasks.gates.rows import list_gates
from tasks.lists.publication import Outcome, UnknownList, gate_free_reason, publish
from tasks.phases.drug_list import reconcile_drug_list
from tests.factories import (
    clock_at,
    make_enterprise,
    make_institution,
    make_product,
    make_program,
    make_reviewers,
    make_running_application,
    publish_drug_list,
    shanghai,
)

SLUG = "shenyang-2025"
CLOCK = clock_at(2025, 10, 9, 10)
# 002 att.2, the enterprise product table: exactly these 12 headers, then the list's own 类别 and 特药.
SEED_DRUG_HEADERS = ["药品统一编码", "产品名称", "剂型", "规格", "转换比", "最小制剂单位", "最小包装单位", "包装材质",
                     "生产企业", "投标企业", "中选价(元)", "批准文号", "类别", "特药"]
INSTITUTION_HEADERS = ["机构医保编码", "单位名称", "所属区县", "机构类别", "机构性质", "单位地址", "联系电话", "批次",
                       "三进标识"]
FORMULAS = ['=HYPERLINK("http://evil.example","<b>点我</b>")', "+1", "-1", "@SUM(1+1)", "\t=1+1", "\r=1+1"]


def running(engine: Engine, program: Program, *names: str) -> list[Institution]:
    insts = [make_institution(engine, name=name) for name in names]
    for inst in insts:
        make_running_application(engine, program, inst, running_at=shanghai(2025, 9, 30, 9))
    return insts


def versions(engine: Engine, kind: ListKind = ListKind.INSTITUTIONS) -> list[ListVersion]:
    with Session(engine) as session:
        return list(session.execute(select(ListVersion).where(col(ListVersion.kind) == kind)
                                    .order_by(col(ListVersion.number))).scalars())


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def accept_declaration(engine: Engine, program: Program, products: list[Product]) -> None:
    """Accepted declarations of these products, with no list published (the list gate comes next)."""
    with Session(engine) as session:
        for enterprise_id in sorted({p.enterprise_id for p in products}):
            decl = EnterpriseDeclaration(program_id=program.id or 0, enterprise_id=enterprise_id,
                                         state=DeclarationState.ACCEPTED, submitted_at=CLOCK.now())
            session.add(decl)
            session.flush()
            session.add_all([DeclarationItem(declaration_id=decl.id or 0, product_id=p.id or 0)
                             for p in products if p.enterprise_id == enterprise_id])
        session.commit()


def test_gate_free_reasons_follow_the_approval_rule() -> None:
    none: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
    assert gate_free_reason({**none, "removed": ["X"]}, "h2", "h1") is not None
    assert gate_free_reason({**none, "added": ["X"]}, "h2", "h1") is None
    assert gate_free_reason({**none, "changed": ["X"]}, "h2", "h1") is None
    assert gate_free_reason({**none, "added": ["X"]}, "h1", "h1") is not None  # back to what was approved
    assert gate_free_reason({**none, "added": ["X"]}, "h1", None) is None


def test_publishing_twice_without_change_makes_one_version_and_renders_once(engine: Engine, tmp_path: Path) -> None:
    program = make_program(engine, SLUG)
    running(engine, program, "沈阳市和平区南湖社区卫生服务中心", "国药控股沈阳大药房")
    first = publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    second = publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    assert [(r.kind, r.outcome, r.version, r.rendered) for r in first] == [
        (ListKind.INSTITUTIONS, Outcome.PUBLISHED, 1, (1,))]
    assert [(r.kind, r.outcome, r.version, r.rendered) for r in second] == [
        (ListKind.INSTITUTIONS, Outcome.UNCHANGED, 1, ())]
    assert len(versions(engine)) == 1
    assert sorted(p.name for p in (tmp_path / SLUG).iterdir()) == sorted(
        [f"{SLUG}-institutions-v1{s}" for s in (".html", "-p1.html", ".xlsx", ".csv", "-diff.html")] + ["index.html"])


def test_a_missing_file_is_rendered_again_and_nothing_else(engine: Engine, tmp_path: Path) -> None:
    program = make_program(engine, SLUG)
    running(engine, program, "南湖社区卫生服务中心")
    [result] = publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    result.files["csv"].unlink()
    html_mtime = result.files["html"].stat().st_mtime_ns
    [again] = publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    assert (again.outcome, again.rendered) == (Outcome.UNCHANGED, (1,))
    assert again.files["csv"].exists()
    assert again.files["html"].stat().st_mtime_ns >= html_mtime
    [third] = publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    assert third.rendered == ()


def test_an_empty_list_is_not_published_as_a_first_version(engine: Engine, tmp_path: Path) -> None:
    make_program(engine, SLUG)
    results = publish(engine, SLUG, clock=CLOCK, out_dir=tmp_path)
    assert [(r.kind, r.outcome, r.version) for r in results] == [
        (ListKind.DRUGS, Outcome.EMPTY, None), (ListKind.INSTITUTIONS, Outcome.EMPTY, None)]
    assert versions(engine) == [] and versions(engine, ListKind.DRUGS) == []
    assert "尚未发布" in (tmp_path / SLUG / "index.html").read_text(encoding="utf-8")


def test_the_diff_of_two_versions_is_exact_and_its_page_shows_old_to_new(engine: Engine, tmp_path: Path) -> None:
    program = make_program(engine, SLUG)
    kept, gone, edited = running(engine, program, "保留药房", "退出药房", "改电话药房")
    publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    [added] = running(engine, program, "新增药房")
    with Session(engine) as session:
        session.execute(update(Application).where(col(Application.institution_id) == gone.id)
                        .values(state=ApplicationState.EXITED))
        session.execute(update(Institution).where(col(Institution.id) == edited.id).values(phone="024-22334455"))
        session.commit()
    [result] = publish(engine, SLUG, ["institutions"], clock=clock_at(2025, 10, 10, 10), out_dir=tmp_path)
    assert (result.outcome, result.version) == (Outcome.PUBLISHED, 2)
    v2 = versions(engine)[1]
    assert v2.diff == {"added": [added.insurance_code], "removed": [gone.insurance_code],
                       "changed": [edited.insurance_code]}
    assert (v2.added, v2.removed, v2.changed, v2.entry_count) == (1, 1, 1, 3)
    page = text_of(result.files["diff"].read_text(encoding="utf-8"))
    assert "新增（1） 机构医保编码" in page and "新增药房" in page and "退出药房" in page
    assert f"{edited.insurance_code} 改电话药房 联系电话 13800000000 → 024-22334455" in page
    assert kept.name not in page  # unchanged entries are not in the diff
    first = text_of((tmp_path / SLUG / f"{SLUG}-institutions-v1-diff.html").read_text(encoding="utf-8"))
    assert "首次发布：新增 3，移除 0，变更 0" in first


def test_the_csv_starts_with_a_bom_and_keeps_chinese(engine: Engine, tmp_path: Path) -> None:
    program = make_program(engine, SLUG)
    running(engine, program, "沈阳市和平区南湖社区卫生服务中心")
    [result] = publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    data = result.files["csv"].read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == INSTITUTION_HEADERS
    assert rows[1][1:5] == ["沈阳市和平区南湖社区卫生服务中心", "和平区", "连锁药店", "定点零售药店"]
    assert rows[1][7:] == ["第1批", "三进"]


def test_xlsx_headers_are_the_seed_tables(engine: Engine, tmp_path: Path) -> None:
    program = make_program(engine, SLUG)
    enterprise = make_enterprise(engine, "石药集团欧意药业有限公司")
    publish_drug_list(engine, program, [make_product(engine, enterprise, name="苯磺酸氨氯地平片")], clock=CLOCK)
    running(engine, program, "南湖社区卫生服务中心")
    results = {r.kind: r for r in publish(engine, SLUG, clock=CLOCK, out_dir=tmp_path)}
    assert results[ListKind.DRUGS].outcome == Outcome.UNCHANGED  # published before; only its files were missing
    assert results[ListKind.DRUGS].rendered == (1,)

    def sheet_rows(path: Path) -> list[tuple[object, ...]]:
        workbook = openpyxl.load_workbook(path, read_only=True)
        rows = list(workbook.worksheets[0].iter_rows(values_only=True))
        workbook.close()
        return rows

    drugs = sheet_rows(results[ListKind.DRUGS].files["xlsx"])
    assert drugs[0][0] == "“三进”集采药品清单"  # the title row, then the seed's headers
    assert list(drugs[1]) == SEED_DRUG_HEADERS
    assert drugs[2][1] == "苯磺酸氨氯地平片" and drugs[2][10] == 12.5  # a price is a number (shown 12.50)
    assert list(sheet_rows(results[ListKind.INSTITUTIONS].files["xlsx"])[1]) == INSTITUTION_HEADERS


def test_formula_like_cells_are_neutralized_in_csv_and_xlsx_and_escaped_in_html(engine: Engine, tmp_path: Path) -> None:
    program = make_program(engine, SLUG)
    running(engine, program, *FORMULAS)
    [result] = publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)

    rows = list(csv.reader(io.StringIO(result.files["csv"].read_bytes().decode("utf-8-sig"), newline="")))
    assert sorted(r[1] for r in rows[1:]) == sorted("'" + f for f in FORMULAS)

    workbook = openpyxl.load_workbook(result.files["xlsx"])
    sheet = workbook.worksheets[0]
    cells = [row[1] for row in sheet.iter_rows(min_row=3)]  # below the title and the header
    # OOXML stores a control character such as \r as _x000D_; Excel decodes it, openpyxl leaves it.
    values = [re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m.group(1), 16)), c.value) for c in cells]
    assert sorted(values) == sorted("'" + f for f in FORMULAS)
    assert all(c.data_type == "s" for row in sheet.iter_rows(min_row=2) for c in row)  # text, never a formula
    workbook.close()

    for page in (result.files["html"].with_name(f"{SLUG}-institutions-v1-p1.html"), result.files["diff"]):
        html = page.read_text(encoding="utf-8")
        assert "&lt;b&gt;点我&lt;/b&gt;" in html and "<b>点我" not in html
        assert "=HYPERLINK(&#34;http://evil.example&#34;" in html  # shown as text, not given an apostrophe


def test_the_index_lists_every_version_newest_first_with_working_links(engine: Engine, tmp_path: Path) -> None:
    program = make_program(engine, SLUG)
    running(engine, program, "第一家")
    publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    running(engine, program, "第二家")
    publish(engine, SLUG, ["institutions"], clock=clock_at(2025, 10, 10, 10), out_dir=tmp_path)
    index = (tmp_path / SLUG / "index.html").read_text(encoding="utf-8")
    text = text_of(index)
    assert text.index("第2版（最新） 2025-10-10 10:00 2 1 0 0") < text.index("第1版 2025-10-09 10:00 1 1 0 0")
    links = re.findall(r'href="([^"]+)"', index)
    assert len(links) == 8 and f"{SLUG}-institutions-v2-diff.html" in links
    assert all((tmp_path / SLUG / link).exists() for link in links)


def test_unknown_list_names_are_refused(engine: Engine, tmp_path: Path) -> None:
    make_program(engine, SLUG)
    with pytest.raises(UnknownList):
        publish(engine, SLUG, ["recommended"], clock=CLOCK, out_dir=tmp_path)


def test_new_drugs_wait_for_the_gate_removals_and_the_approved_list_do_not(engine: Engine, tmp_path: Path) -> None:
    program = make_program(engine, SLUG)
    make_reviewers(engine, [])
    good, bad = make_enterprise(engine, "正大天晴药业集团股份有限公司"), make_enterprise(engine, "某某制药有限公司")
    products = [make_product(engine, good), make_product(engine, good), make_product(engine, bad)]
    accept_declaration(engine, program, products)

    [waiting] = publish(engine, SLUG, ["drugs"], clock=CLOCK, out_dir=tmp_path)
    assert (waiting.outcome, waiting.version, waiting.gate_id) == (Outcome.AWAITING_APPROVAL, None, None)
    assert dict(waiting.pending) == {"added": 3, "removed": 0, "changed": 0}
    after_close = clock_at(2025, 9, 16, 9)  # the collection window closed: drug_list asks the manager
    assert reconcile_drug_list(engine, SLUG, clock=after_close).list_gate
    [gate] = [g for g in list_gates(engine) if g.kind == GateKind.LIST_APPROVAL]
    [waiting] = publish(engine, SLUG, ["drugs"], clock=CLOCK, out_dir=tmp_path)
    assert (waiting.outcome, waiting.gate_id) == (Outcome.AWAITING_APPROVAL, gate.id)
    assert versions(engine, ListKind.DRUGS) == []

    decide_gate(engine, gate.id or 0, approve=[1], user_name="manager", clock=after_close)  # publishes v1
    [approved] = publish(engine, SLUG, ["drugs"], clock=CLOCK, out_dir=tmp_path)
    assert (approved.outcome, approved.version, approved.rendered) == (Outcome.UNCHANGED, 1, (1,))

    def set_state(state: EnterpriseState) -> None:
        with Session(engine) as session:
            session.execute(update(Enterprise).where(col(Enterprise.id) == bad.id).values(state=state))
            session.commit()

    set_state(EnterpriseState.DISQUALIFIED)  # refused to deliver (seed 000): off the list at once
    [removed] = publish(engine, SLUG, ["drugs"], clock=CLOCK, out_dir=tmp_path)
    assert (removed.outcome, removed.version) == (Outcome.PUBLISHED, 2)
    assert versions(engine, ListKind.DRUGS)[1].diff == {"added": [], "removed": [products[2].drug_code],
                                                        "changed": []}
    set_state(EnterpriseState.ACTIVE)  # reinstated: the content is again what the manager approved
    [restored] = publish(engine, SLUG, ["drugs"], clock=CLOCK, out_dir=tmp_path)
    assert (restored.outcome, restored.version) == (Outcome.PUBLISHED, 3)
    assert versions(engine, ListKind.DRUGS)[2].content_hash == versions(engine, ListKind.DRUGS)[0].content_hash

    with Session(engine) as session:  # a price change is a change the manager must see
        session.execute(update(Product).where(col(Product.id) == products[0].id).values(winning_price="11.80"))
        session.commit()
    [changed] = publish(engine, SLUG, ["drugs"], clock=CLOCK, out_dir=tmp_path)
    assert (changed.outcome, changed.version) == (Outcome.AWAITING_APPROVAL, 3)
    assert dict(changed.pending) == {"added": 0, "removed": 0, "changed": 1}
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(ListVersion)
                               .where(col(ListVersion.kind) == ListKind.DRUGS)).scalar_one() == 3
        assert all(g.state == GateState.DECIDED for g in list_gates(engine, states=list(GateState))
                   if g.kind == GateKind.LIST_APPROVAL)


def test_the_recommended_list_rides_with_the_drug_list(engine: Engine, tmp_path: Path) -> None:
    program = make_program(engine, "jiangxi-2025")
    enterprise = make_enterprise(engine)
    product = make_product(engine, enterprise)
    publish_drug_list(engine, program, [product], clock=CLOCK)
    with Session(engine) as session:  # now recommended (002 §三): the drug list itself is unchanged
        session.execute(update(DeclarationItem).where(col(DeclarationItem.product_id) == product.id)
                        .values(recommended=True))
        session.commit()
    results = {r.kind: r for r in publish(engine, "jiangxi-2025", "drugs", clock=CLOCK, out_dir=tmp_path)}
    assert (results[ListKind.DRUGS].outcome, results[ListKind.DRUGS].version) == (Outcome.UNCHANGED, 1)
    recommended = results[ListKind.RECOMMENDED]
    assert (recommended.outcome, recommended.version, recommended.rendered) == (Outcome.PUBLISHED, 1, (1,))
    assert recommended.files["xlsx"].name == "jiangxi-2025-recommended-v1.xlsx"
    assert "“三进”推荐药品清单" in (tmp_path / "jiangxi-2025" / "index.html").read_text(encoding="utf-8")


def test_two_publishers_at_once_make_one_version(engine: Engine, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """B reads "no version yet" while A is publishing; unguarded, B would number after A's commit: v2 = v1."""
    program = make_program(engine, SLUG)
    running(engine, program, "南湖社区卫生服务中心")
    a_checking, b_checked, a_done = threading.Event(), threading.Event(), threading.Event()
    real = tasks.lists.versions.latest_version

    def interleaved(*args, **kwargs):
        version = real(*args, **kwargs)
        if threading.current_thread().name == "A":
            a_checking.set()
            b_checked.wait(timeout=2)  # with the program lock B cannot get here: A goes on after 2 s
        else:
            b_checked.set()
            a_done.wait(timeout=20)
        return version

    monkeypatch.setattr(tasks.lists.versions, "latest_version", interleaved)  # as publish_list reads it
    results: dict[str, Outcome | BaseException] = {}

    def run() -> None:
        name = threading.current_thread().name
        try:
            [result] = publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
            results[name] = result.outcome
        except BaseException as exc:  # a thread's exception would otherwise vanish
            results[name] = exc
        finally:
            if name == "A":
                a_done.set()

    a, b = threading.Thread(target=run, name="A"), threading.Thread(target=run, name="B")
    a.start()
    assert a_checking.wait(timeout=20)
    b.start()
    a.join(timeout=60)
    b.join(timeout=60)
    assert results == {"A": Outcome.PUBLISHED, "B": Outcome.UNCHANGED}
    assert [v.number for v in versions(engine)] == [1]

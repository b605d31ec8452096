# mypy: disable-error-code="arg-type,call-overload,union-attr,attr-defined,misc"
# (SQLModel types column attributes as plain values, so query expressions confuse mypy; as in sanjin/demo.py.)
"""Figure 3: publishing the drug list and the institution list as HTML + XLSX + CSV, with the diff.

Set-up (untimed): P products of accepted declarations and N running institutions written with
bulk Core inserts, version 1 of both lists published and its files written, then the data changed
as a week of the program changes it (drugs: +2 % products, 2 % new prices, 1 % dropped;
institutions: +1 % in a new batch, 0.5 % new addresses, 0.2 % suspended).

Timed, per list, what the product does to put version 2 and its files out:
- institutions: tasks.lists.publication.publish (entries computed, hashed, diffed against version 1,
  version 2 and its entries written and committed; then the entry page, the HTML pages, XLSX, CSV,
  the diff page, moved into place; the index);
- drugs: the new drugs wait for the manager's list-approval gate, whose approval calls
  tasks.lists.versions.publish_list in its transaction; then tasks.lists.publication.publish writes the files.

Baselines on the same version, same process (each replaces one part of the product's time):
- the XLSX written by xlsxwriter (constant_memory, write_row: the library writer the product used
  before) or by openpyxl's write-only workbook, in place of tasks.lists.xlsx_text (measured at full size);
- row-by-row ORM reads: the previous version's entries read with one `session.get(ListEntry, id)`
  each instead of one query (measured on a sample, extrapolated to the list's size).
"""

from __future__ import annotations

import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.env import SLUG, fresh_database, setup_program, shanghai
from benchmarks.instrument import peak_rss_mb
from benchmarks.profiling import profiled


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    home = Path(cfg["home"])
    n_inst, n_prod = int(cfg["institutions"]), int(cfg["products"])
    sample = int(cfg["sample"])
    profile_dir = Path(cfg["profile_dir"]) if cfg.get("profile_dir") else None
    profiles: dict[str, Any] = {}
    with fresh_database(cfg["db"], home, name="publication") as db:
        engine = db.engine
        clock = setup_program(engine, home, shanghai(10, 9))
        start = time.perf_counter()
        from benchmarks.data import make_institutions

        institutions = make_institutions(n_inst + max(1, n_inst // 100), seed=6)
        expected = {"drugs": _seed_drugs(engine, n_prod), "institutions": _seed_institutions(engine, institutions, n_inst)}
        v1 = {kind: _publish_v1(engine, clock, kind) for kind in expected}
        _render_v1(engine, clock, home / "published")
        _change_drugs(engine, n_prod)
        _change_institutions(engine, institutions, n_inst)
        setup_seconds = time.perf_counter() - start
        clock.set(shanghai(10, 16))
        out: dict[str, Any] = {"setup_seconds_untimed": round(setup_seconds, 2), "db": cfg["db"]}
        for kind in ("drugs", "institutions"):
            with profiled(profile_dir, f"3-publish-{kind}", profiles):
                out[kind] = _publish(engine, clock, kind, home / "published")
            out[kind]["previous_version"] = v1[kind]
            out[kind]["expected"] = expected[kind]
        out["peak_rss_mb_product"] = round(peak_rss_mb(), 1)
        for kind in ("drugs", "institutions"):
            out[kind]["baselines"] = {
                "xlsxwriter_constant_memory": _xlsx_baseline(engine, out[kind], home / "baseline-xlsxwriter",
                                                             _xlsxwriter_rows),
                "openpyxl_write_only": _xlsx_baseline(engine, out[kind], home / "baseline-openpyxl",
                                                      _openpyxl_rows),
                "orm_row_by_row_reads": _orm_reads_baseline(engine, out[kind], sample),
            }
        out["checks"] = _checks(out)
        out["profiles"] = profiles
        return out


def _children_cpu() -> float:
    """CPU time of this process's finished children (the XLSX writer of a big list)."""
    times = os.times()
    return times.children_user + times.children_system


def _publish_v1(engine: Any, clock: Any, kind: str) -> int:
    from core.db import transaction
    from tasks.lists.versions import publish_list
    from tasks.programs import get_program

    with transaction(engine) as session:
        program, defn = get_program(session, SLUG)
        version = publish_list(session, program, defn, kind, clock=clock, actor="benchmark", reason="set-up")
        assert version is not None
        return version.number


def _render_v1(engine: Any, clock: Any, out_dir: Path) -> None:
    """Version 1's files, so the timed run renders version 2's only."""
    from tasks.lists.publication import publish

    publish(engine, SLUG, ["drugs", "institutions"], clock=clock, actor="benchmark", out_dir=out_dir)


class _Timer:
    """Seconds spent inside some product functions, found by wrapping them where they are called from."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, module: Any, name: str, label: str) -> None:
        original = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start

        setattr(module, name, timed)
        self._undo.append((module, name, original))

    def restore(self) -> None:
        for module, name, original in reversed(self._undo):
            setattr(module, name, original)
        self._undo.clear()

    def get(self, label: str) -> float:
        return round(self.seconds.get(label, 0.0), 3)


def _publish(engine: Any, clock: Any, kind: str, out_dir: Path) -> dict[str, Any]:
    import tasks.lists.downloads
    import tasks.lists.publication
    import tasks.lists.versions
    from core.db import transaction
    from models.catalog import ListVersion
    from tasks.lists.publication import Outcome, publish
    from tasks.lists.versions import publish_list
    from tasks.programs import get_program

    timer = _Timer()
    timer.wrap(tasks.lists.publication, "_publish_checked", "version")
    timer.wrap(tasks.lists.publication, "_render", "files")
    # The downloads' (CSV + XLSX) share of the wall time: starting them (a child process for a big list;
    # written here for a small one), then waiting for them after the HTML.
    timer.wrap(tasks.lists.publication, "start_version_downloads", "downloads")
    timer.wrap(tasks.lists.downloads.Downloads, "wait", "downloads")
    timer.wrap(tasks.lists.versions, "stored_texts", "read_entries")  # the previous version, as publish_rows reads it
    timer.wrap(tasks.lists.publication, "stored_texts", "read_entries")
    try:
        start, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        if kind == "drugs":  # the list-approval gate's effect (tasks.gates.effects._approve_list), then the files
            with transaction(engine) as session:
                program, defn = get_program(session, SLUG)
                version = publish_list(session, program, defn, kind, clock=clock, actor="benchmark",
                                       reason="benchmark")
                assert version is not None, f"the {kind} list did not change"
        published = time.perf_counter()
        [result] = publish(engine, SLUG, [kind], clock=clock, actor="benchmark", out_dir=out_dir)
        done, cpu, children = time.perf_counter(), time.process_time() - cpu, _children_cpu() - children
    finally:
        timer.restore()
    expected_outcome = Outcome.UNCHANGED if kind == "drugs" else Outcome.PUBLISHED
    assert (result.outcome, result.version, result.rendered) == (expected_outcome, 2, (2,)), result
    from sqlmodel import Session, select

    with Session(engine) as session:
        version = session.exec(select(ListVersion).where(ListVersion.kind == kind, ListVersion.number == 2)).one()
    stem = result.files["html"].name.removesuffix(".html")
    pages = sorted(result.files["html"].parent.glob(f"{stem}-p*.html"), key=lambda p: int(p.stem.rsplit("-p", 1)[1]))
    files = {k: {"path": str(p), "bytes": p.stat().st_size} for k, p in result.files.items()}
    files["index"] = {"path": str(result.index), "bytes": result.index.stat().st_size}
    version_seconds = (published - start) + timer.seconds.get("version", 0.0)
    return {
        "version": version.number, "version_id": version.id, "entries": version.entry_count,
        "diff": {"added": version.added, "removed": version.removed, "changed": version.changed},
        "seconds": round(done - start, 3),
        # CPU time: on this shared 2-core machine wall time rises with others' load, CPU time much less
        "cpu_seconds": round(cpu, 3), "child_cpu_seconds": round(children, 3),
        "publish_seconds": round(version_seconds, 3), "render_seconds": timer.get("files"),
        "downloads_wait_seconds": timer.get("downloads"), "read_entries_seconds": timer.get("read_entries"),
        "other_seconds": round(done - start - version_seconds - timer.seconds.get("files", 0.0), 3),
        "files": files,
        "html_pages": {"count": len(pages), "paths": [str(p) for p in pages],
                       "largest_bytes": max((p.stat().st_size for p in pages), default=0)},
    }


# --------------------------------------------------------------------------- data


def _program_id(engine: Any) -> int:
    from sqlmodel import Session

    from tasks.programs import get_program

    with Session(engine) as session:
        program, _ = get_program(session, SLUG)
        assert program.id is not None
        return program.id


def _seed_drugs(engine: Any, count: int) -> dict[str, int]:
    """`count` products of accepted declarations of active enterprises (100 products per enterprise)."""
    from sqlalchemy import insert, select

    from benchmarks.data import make_products
    from models.catalog import DeclarationItem, Enterprise, EnterpriseDeclaration, Product
    from models.states import DeclarationState, EnterpriseState

    pid = _program_id(engine)
    enterprises = max(1, count // 100)
    extra = max(1, count // 50)
    products = make_products(count + extra, enterprises)
    now = shanghai(9, 1)
    with engine.begin() as conn:
        conn.execute(insert(Enterprise), [{"name": f"基准{i:04d}制药有限公司", "state": EnterpriseState.ACTIVE}
                                          for i in range(enterprises)])
        ent_ids = [r[0] for r in conn.execute(select(Enterprise.id).order_by(Enterprise.id))]  # type: ignore[arg-type]
        conn.execute(insert(EnterpriseDeclaration), [
            {"program_id": pid, "enterprise_id": e, "state": DeclarationState.ACCEPTED, "commitment_signed": True,
             "findings": [], "submitted_at": now, "decided_at": now, "decided_by": "manager"} for e in ent_ids])
        decl = {e: d for d, e in conn.execute(select(EnterpriseDeclaration.id, EnterpriseDeclaration.enterprise_id))}
        conn.execute(insert(Product), [{**p.values, "enterprise_id": ent_ids[p.enterprise]} for p in products[:count]])
        ids = conn.execute(select(Product.id, Product.enterprise_id)).all()
        conn.execute(insert(DeclarationItem), [{"declaration_id": decl[e], "product_id": i, "recommended": False}
                                               for i, e in ids])
    removed = max(1, count // 100)
    return {"entries": count + extra - removed, "added": extra, "removed": removed, "changed": max(1, count // 50)}


def _change_drugs(engine: Any, count: int) -> None:
    """+2 % products (a second accepted declaration), 2 % new winning prices, 1 % dropped from their declaration."""
    from sqlalchemy import bindparam, delete, insert, select, update

    from benchmarks.data import make_products
    from models.catalog import DeclarationItem, Enterprise, EnterpriseDeclaration, Product
    from models.states import DeclarationState

    pid = _program_id(engine)
    enterprises = max(1, count // 100)
    extra = max(1, count // 50)
    new = make_products(count + extra, enterprises)[count:]
    now = shanghai(10, 10)
    with engine.begin() as conn:
        first = conn.execute(select(Enterprise.id).order_by(Enterprise.id).limit(1)).scalar_one()  # type: ignore[arg-type]
        decl = conn.execute(insert(EnterpriseDeclaration).returning(EnterpriseDeclaration.id), [
            {"program_id": pid, "enterprise_id": first, "state": DeclarationState.ACCEPTED, "commitment_signed": True,
             "findings": [], "submitted_at": now, "decided_at": now, "decided_by": "manager"}]).scalar_one()
        conn.execute(insert(Product), [{**p.values, "enterprise_id": first} for p in new])
        new_ids = conn.execute(select(Product.id).where(Product.drug_code.in_([p.values["drug_code"] for p in new]))  # type: ignore[attr-defined]
                               ).scalars().all()
        conn.execute(insert(DeclarationItem), [{"declaration_id": decl, "product_id": i, "recommended": False}
                                               for i in new_ids])
        old = conn.execute(select(Product.id, Product.winning_price).where(Product.id.not_in(new_ids))  # type: ignore[union-attr]
                           .order_by(Product.id)).all()  # type: ignore[arg-type]
        changed = old[: max(1, count // 50)]
        conn.execute(update(Product).where(Product.id == bindparam("pid")).values(winning_price=bindparam("price")),
                     [{"pid": i, "price": Decimal(p) + Decimal("1.00")} for i, p in changed])
        dropped = [i for i, _ in old[len(old) - max(1, count // 100):]]
        conn.execute(delete(DeclarationItem).where(DeclarationItem.product_id.in_(dropped)))  # type: ignore[attr-defined]


def _seed_institutions(engine: Any, rows: list[Any], count: int) -> dict[str, int]:
    """The first `count` institutions of `rows`, their applications running in batch 1."""
    extra = len(rows) - count
    _insert_running(engine, rows[:count], batch_number=1)
    # A suspended institution stays on the list with its mark changed (issue #15): a change, not a removal.
    suspended = max(1, count // 500)
    return {"entries": count + extra, "added": extra, "removed": 0, "changed": max(1, count // 200) + suspended}


def _insert_running(engine: Any, rows: list[Any], *, batch_number: int) -> None:
    from sqlalchemy import insert, select

    from models.enrollment import Application, Batch, Institution
    from models.states import KIND_LABELS, ApplicationState, BatchState

    pid = _program_id(engine)
    kinds = {label: kind for kind, label in KIND_LABELS.items()}
    when = shanghai(9, 30)
    with engine.begin() as conn:
        batch = conn.execute(insert(Batch).returning(Batch.id), [
            {"program_id": pid, "number": batch_number, "state": BatchState.RUNNING, "opened_on": when.date(),
             "cutoff_on": when.date(), "declared_at": when, "matured_at": when, "running_at": when}]).scalar_one()
        conn.execute(insert(Institution), [{
            "name": r.row["单位名称"], "address": r.row["单位地址"], "uscc": r.row["统一社会信用代码"],
            "legal_rep": r.row["法人代表"], "insurance_code": r.code, "contact_name": r.row["联系人"],
            "phone": r.row["联系电话"], "email": r.row["电子邮箱"] or None, "district": r.district,
            "kind": kinds[r.row["机构类别"]], "private_tertiary": False, "special_designated": False,
        } for r in rows])
        codes = {r.code for r in rows}
        ids = [(i, d) for i, c, d in conn.execute(select(Institution.id, Institution.insurance_code,
                                                         Institution.district)) if c in codes]
        conn.execute(insert(Application), [
            {"program_id": pid, "institution_id": i, "attempt": 1, "district": d, "state": ApplicationState.RUNNING,
             "batch_id": batch, "committed_drug_count": 60, "findings": [], "submitted_at": when, "decided_at": when}
            for i, d in ids])


def _change_institutions(engine: Any, rows: list[Any], count: int) -> None:
    """+1 % institutions (the rest of `rows`) in a new running batch, 0.5 % new addresses, 0.2 % suspended."""
    from sqlalchemy import bindparam, select, update

    from models.enrollment import Application, Institution
    from models.states import ApplicationState

    _insert_running(engine, rows[count:], batch_number=2)
    with engine.begin() as conn:
        ids = conn.execute(select(Institution.id).order_by(Institution.id).limit(count)).scalars().all()  # type: ignore[arg-type]
        moved = ids[: max(1, count // 200)]
        conn.execute(update(Institution).where(Institution.id == bindparam("iid"))
                     .values(address=bindparam("addr")),
                     [{"iid": i, "addr": f"沈阳市和平区新址路{k + 1}号"} for k, i in enumerate(moved)])
        suspended = ids[len(ids) - max(1, count // 500):]
        conn.execute(update(Application).where(Application.institution_id.in_(suspended))  # type: ignore[attr-defined]
                     .values(state=ApplicationState.SUSPENDED))


# --------------------------------------------------------------------------- baselines


def _xlsxwriter_rows(path: Path, sheet: str, header: Any, rows: Any) -> None:
    """The library's fast path: constant_memory (inline strings, one row in memory) and write_row."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False})
    worksheet = workbook.add_worksheet(sheet)
    worksheet.write_row(0, 0, header)
    for r, row in enumerate(rows, start=1):
        worksheet.write_row(r, 0, row)
    workbook.close()


def _openpyxl_rows(path: Path, sheet: str, header: Any, rows: Any) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet)
    worksheet.append(list(header))
    for row in rows:
        worksheet.append(list(row))
    workbook.save(str(path))


def _xlsx_baseline(engine: Any, timed: dict[str, Any], out_dir: Path, writer: Any) -> dict[str, Any]:
    """The same version's XLSX written by `writer` and by tasks.lists.xlsx_text, both here on the same rows:
    the product's time plus the difference (the product writes it in a child, in parallel, so this
    understates what the product gains)."""
    from sqlmodel import Session

    from models.catalog import ListVersion
    from tasks.lists.files import TITLES, neutralized
    from tasks.lists.versions import columns_of, version_rows
    from tasks.lists.xlsx_text import write_text_xlsx

    with Session(engine) as session:
        version = session.get(ListVersion, timed["version_id"])
        assert version is not None
        kind = version.kind
        columns = columns_of(kind)
        cells = neutralized(version_rows(session, timed["version_id"], columns).ordered())
    out_dir.mkdir(parents=True, exist_ok=True)
    sheet = TITLES[kind][:31].replace("“", "").replace("”", "")
    start = time.perf_counter()
    write_text_xlsx(out_dir / f"{kind.value}-product.xlsx", sheet, columns, cells)
    ours = time.perf_counter() - start
    path = out_dir / f"{kind.value}.xlsx"
    start = time.perf_counter()
    writer(path, sheet, columns, cells)
    seconds = time.perf_counter() - start
    name = getattr(writer, "__name__", "")
    what = ("xlsxwriter constant_memory + write_row (the library writer used before)" if "xlsxwriter" in name
            else "openpyxl write-only workbook")
    return {"what": f"the XLSX by {what} in place of tasks.lists.xlsx_text (both timed here, in-process, on the same "
                    "rows): the product's time + the difference", "what_short": what.split(" (")[0],
            "xlsx_seconds": round(seconds, 3), "product_xlsx_seconds_in_process": round(ours, 3),
            "seconds": round(timed["seconds"] + seconds - ours, 3),
            "xlsx_rows": _xlsx_rows(path), "xlsx_bytes": path.stat().st_size}


def _orm_reads_baseline(engine: Any, timed: dict[str, Any], sample: int) -> dict[str, Any]:
    """Entries read one ORM `session.get` per row instead of one query, on a sample, extrapolated."""
    from sqlalchemy import select
    from sqlmodel import Session

    from models.catalog import ListEntry

    with Session(engine) as session:
        ids = session.execute(select(ListEntry.id).where(ListEntry.version_id == timed["version_id"])
                              .order_by(ListEntry.id).limit(sample)).scalars().all()  # type: ignore[arg-type]
        start = time.perf_counter()
        entries = {}
        for i in ids:
            entry = session.get(ListEntry, i)
            assert entry is not None
            entries[entry.key] = entry.data
        seconds = time.perf_counter() - start
    per_row = seconds / len(ids) if ids else 0.0
    reads = per_row * timed["entries"]
    return {"what": "entries read with one ORM session.get(ListEntry, id) per row (extrapolated from a sample), "
                    "the rest of publish + render as measured",
            "what_short": f"ORM read per row (extrap. from {len(ids):,})", "sample": len(ids),
            "sample_seconds": round(seconds, 3), "per_row_ms": round(per_row * 1000, 4),
            "reads_seconds": round(reads, 3),
            "seconds": round(timed["seconds"] - timed["read_entries_seconds"] + reads, 3),
            "extrapolated": len(ids) < timed["entries"]}


def _xlsx_rows(path: Path | str) -> int:
    """Rows of the first sheet, header included (python-calamine: fast enough for 100,000 rows)."""
    from python_calamine import CalamineWorkbook

    return len(CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python(skip_empty_area=False))


def _checks(out: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    ok = True
    for kind in ("drugs", "institutions"):
        part, want = out[kind], out[kind]["expected"]
        csv_rows = 0
        if "csv" in part["files"]:
            with open(part["files"]["csv"]["path"], encoding="utf-8-sig") as handle:
                csv_rows = sum(1 for _ in handle) - 1
        html_rows = sum(Path(p).read_text(encoding="utf-8").count("<tr><td>") for p in part["html_pages"]["paths"])
        # The published XLSX has a title row above its header row (issue 16); the baselines have the header only.
        xlsx_rows = _xlsx_rows(part["files"]["xlsx"]["path"]) - 2 if "xlsx" in part["files"] else 0
        baseline_rows = {k: b["xlsx_rows"] - 1 for k, b in part["baselines"].items() if "xlsx_rows" in b}
        diff_page = Path(part["files"]["diff"]["path"]).read_text(encoding="utf-8")
        diff_rows = diff_page.count("<tr><td>")  # added + removed rows, then one row per changed field
        got = {"entries": part["entries"], **part["diff"], "csv_rows": csv_rows, "html_rows": html_rows,
               "html_pages": part["html_pages"]["count"], "xlsx_rows": xlsx_rows,
               **{f"xlsx_rows_{k}": v for k, v in baseline_rows.items()}, "diff_page_rows": diff_rows}
        good = (got["entries"] == want["entries"] and all(got[k] == want[k] for k in ("added", "removed", "changed"))
                and csv_rows == html_rows == xlsx_rows == want["entries"] and part["version"] == 2
                and all(v == want["entries"] for v in baseline_rows.values())
                and diff_rows >= want["added"] + want["removed"] + want["changed"])
        checks[kind] = {"expected": want, "got": got, "ok": good}
        ok = ok and good
    checks["ok"] = ok
    return checks

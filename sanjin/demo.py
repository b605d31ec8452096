# mypy: disable-error-code="arg-type,call-overload,union-attr,attr-defined,misc"
# (SQLModel types column attributes as plain values, so query expressions confuse mypy in this script-like module.)
"""`sanjin demo`: the whole Shenyang 2025 program, 2025-08-07 into 2026, on a simulated clock.

The same flows as production; only the clock (simulated, in the database), the reviewers (a script
that also rejects some), the submitters (generated files on scripted days) and the mail server (a
maildir) are stand-ins. Everything lands under `--home` (default var/demo), wiped at the start so the
demo can be re-run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from core.clock_store import DatabaseClock
from models.clock import SHANGHAI
from sanjin import demo_data as data

START = date(2025, 8, 7)
END = date(2026, 1, 16)
SLUG = "shenyang-2025"
DISTRICT_REJECT_REASONS = ["医保基金使用存在违规记录，暂不纳入", "经营场所与申报地址不符", "承诺书未加盖公章"]
SLOW_DISTRICT = "康平县"  # its reviewer lets gates run late, so carry-over and escalation happen


def _prepare_environment(home: Path) -> None:
    """Point the product and Prefect at the demo folder before either is imported."""
    os.environ["SANJIN_HOME"] = str(home)
    os.environ["SANJIN_DATABASE_URL"] = f"sqlite:///{home / 'sanjin.db'}"
    os.environ["SANJIN_MAILER"] = "maildir"
    os.environ["SANJIN_CLOCK"] = "database"  # the demo runs five months in minutes: its clock is simulated
    os.environ["SANJIN_MAILDIR"] = str(home / "maildir")
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
    # On the embedded, SQLite-backed API the task-run recorder contends for the database lock and
    # makes each flow cost seconds (measured: 5.0 s → 0.9 s for a flow with two subflows). Flow runs,
    # their states and artifacts are still recorded; production runs a PostgreSQL-backed server.
    os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")
    # Prefect gives its temporary server 20 s to start; a busy or slow machine (a laptop, CI running tests in
    # parallel) can need more, and the demo then ended in a traceback before its first day.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from core import db
    from core.settings import get_settings

    get_settings.cache_clear()
    db._ENGINES.clear()


@dataclass
class Script:
    """Who submits what on which simulated day, and the log of what the demo did."""

    files: Path
    rng: random.Random
    actions: dict[date, list[tuple[str, Callable[[], str]]]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def on(self, day: date, what: str, action: Callable[[], str]) -> None:
        self.actions.setdefault(day, []).append((what, action))


def _waves(institutions: list[data.InstitutionData]) -> list[list[data.InstitutionData]]:
    """Seven enrollment waves (townships first: village clinics name them as proxy parents) and two later ones."""
    townships = [i for i in institutions if i.kind.value == "township_health_center"]
    others = [i for i in institutions if i.kind.value != "township_health_center"]
    villages = [i for i in others if i.kind.value == "village_clinic"]
    rest = [i for i in others if i.kind.value != "village_clinic"]
    main, late = rest[: int(len(rest) * 0.85)], rest[int(len(rest) * 0.85):]
    waves = [townships + main[:200]]
    chunk = (len(main) - 200) // 6 + 1
    waves += [main[200 + k * chunk: 200 + (k + 1) * chunk] for k in range(6)]
    waves[2] += villages
    return [*waves, late[: len(late) // 2], late[len(late) // 2:]]


def build_script(home: Path, engine: Engine, console: Console) -> Script:
    from core.clock_store import DatabaseClock
    from tasks.intake.application_import import import_applications
    from tasks.intake.declaration_import import import_declaration
    from tasks.phases.alliance import respond_to_invitation
    from tasks.platform.accounts import import_platform_accounts
    from tasks.platform.contracts import import_platform_contracts
    from tasks.platform.selections import import_selections

    clock = DatabaseClock(engine)
    rng = random.Random(2025)
    script = Script(home / "uploads", rng)
    enterprises = data.make_enterprises(rng)
    institutions = data.make_institutions(rng)

    def declare(ent: data.EnterpriseData, tag: str = "") -> Callable[[], str]:
        def run() -> str:
            path = data.write_xlsx(script.files / f"品种明细表-{ent.name}{tag}.xlsx", data.DECLARATION_HEADER, ent.rows)
            result = import_declaration(engine, SLUG, path, ent.name, clock=clock, actor="enterprise")
            return f"{ent.name} 申报 {result.rows} 个品种"
        return run

    script.on(date(2025, 8, 7), "提前申报（窗口未开）", declare(enterprises[0], "-提前"))
    declaration_days = [date(2025, 8, d) for d in (11, 14, 18, 21, 25, 28)] + [date(2025, 9, d) for d in (1, 4, 9)]
    for k, ent in enumerate(enterprises[:-1]):
        script.on(declaration_days[k % len(declaration_days)], "企业申报", declare(ent))
    script.on(date(2025, 9, 16), "逾期申报（窗口已关）", declare(enterprises[-1], "-逾期"))

    answers = {"大连市": True, "鞍山市": True, "抚顺市": True, "本溪市": True, "丹东市": False, "锦州市": True,
               "营口市": True, "阜新市": True, "辽阳市": True, "盘锦市": False, "铁岭市": True}
    for k, (city, accept) in enumerate(answers.items()):
        script.on(date(2025, 8, 8) + timedelta(days=3 * (k % 2)), "联盟答复",
                  lambda c=city, a=accept: f"{c}: {respond_to_invitation(engine, SLUG, c, accept=a, clock=clock).value}")

    def apply(rows: list[dict[str, str]], name: str, xlsx: bool) -> Callable[[], str]:
        def run() -> str:
            writer = data.write_xlsx if xlsx else data.write_csv
            path = writer(script.files / name, data.APPLICATION_HEADER, rows)
            result = import_applications(engine, SLUG, path, clock=clock, actor="institution")
            return f"{name}: {result.created} 份申请"
        return run

    waves = _waves(institutions)
    days = [date(2025, 9, d) for d in (10, 12, 16, 19, 23, 26, 29)] + [date(2025, 12, 3), date(2025, 12, 17)]
    for k, (day, wave) in enumerate(zip(days, waves, strict=True)):
        script.on(day, "医药机构申请", apply([i.row for i in wave], f"申请-第{k + 1}波.{'xlsx' if k % 2 else 'csv'}", k % 2 == 1))
    script.on(date(2025, 9, 15), "含错误的申请文件", apply(data.spoil([i.row for i in waves[1][:4]]), "申请-有错误.csv", False))
    script.on(date(2025, 10, 2), "逾期申请（窗口已关）", apply([i.row for i in waves[-1][:3]], "申请-逾期.csv", False))
    script.on(date(2025, 12, 10), "被驳回机构重新申请", lambda: _reapply(engine, script, clock))

    for day in (date(2025, 10, 9), date(2025, 12, 20)):
        script.on(day, "机构选定药品", lambda: _select(engine, script, clock, import_selections))
    for day, share in ((date(2025, 10, 15), 0.45), (date(2025, 11, 5), 0.7), (date(2025, 11, 25), 0.9)):
        script.on(day, "平台账户注册情况导入", lambda s=share: _accounts(engine, script, clock, s, import_platform_accounts))
    for day, share in ((date(2025, 10, 28), 0.5), (date(2025, 11, 20), 0.85)):
        script.on(day, "购销协议签订情况导入", lambda s=share: _contracts(engine, script, clock, s, import_platform_contracts))
    script.on(date(2025, 12, 22), "平台运行数据导入（订单、配送、结算、价格）", lambda: _operations(engine, script, clock))
    _ = console
    return script


def _operations(engine: Engine, script: Script, clock: DatabaseClock) -> str:
    from sanjin.demo_operations import import_operations_exports

    return import_operations_exports(engine, SLUG, script.files, script.rng, clock)


def _running_codes(engine: Engine) -> list[tuple[str, int, bool, int]]:
    from sqlalchemy import select
    from sqlmodel import Session

    from models.enrollment import Application, Institution
    from models.states import ApplicationState

    with Session(engine) as session:
        rows = session.execute(select(Institution.insurance_code, Institution.id, Institution.special_designated,
                                      Institution.proxy_parent_id, Application.committed_drug_count)
                               .join(Application, Application.institution_id == Institution.id)
                               .where(Application.state == ApplicationState.RUNNING)).all()
    return [(code, iid, special, committed) for code, iid, special, parent, committed in rows if parent is None]


def _select(engine: Engine, script: Script, clock: DatabaseClock, importer: Callable[..., object]) -> str:
    from sqlmodel import Session

    from models.states import ListKind
    from tasks.lists.versions import latest_version, version_entries
    from tasks.programs import get_program

    with Session(engine) as session:
        program, _ = get_program(session, SLUG)
        version = latest_version(session, program.id or 0, ListKind.DRUGS)
        if version is None or version.id is None:
            return "药品清单尚未发布"
        entries = version_entries(session, version.id)
    normal = [k for k, e in entries.items() if e.get("特药") != "是"]
    special = [k for k, e in entries.items() if e.get("特药") == "是"]
    from sqlalchemy import select

    from models.operations import Selection
    with Session(engine) as session:
        done = set(session.execute(select(Selection.institution_id)).scalars())
    rows = []
    names = {k: e.get("产品名称", k) for k, e in entries.items()}
    for code, iid, designated, committed in _running_codes(engine):
        if iid in done:
            continue
        # Most select at least the generic names they committed to; about one in thirty falls short.
        wanted = committed - 3 if script.rng.random() < 0.033 else committed
        picks: list[str] = []
        chosen: set[str] = set()
        for drug in script.rng.sample(normal, len(normal)):
            if len(chosen) >= wanted:
                break
            picks.append(drug)
            chosen.add(names[drug])
        if designated and special:
            picks.append(script.rng.choice(special))
        for drug in picks:
            price = entries[drug]["中选价(元)"]
            rows.append({"机构医保编码": code, "药品统一编码": drug, "销售价格(元)": price,
                         "年采购量": str(script.rng.randint(50, 2000))})
    if not rows:
        return "无新增选定"
    path = data.write_csv(script.files / f"药品选定-{len(done)}.csv", ["机构医保编码", "药品统一编码", "销售价格(元)", "年采购量"], rows)
    importer(engine, SLUG, path, clock=clock)
    return f"{len({r['机构医保编码'] for r in rows})} 家机构选定 {len(rows)} 条"


def _pending(engine: Engine, what: str) -> list[tuple[str, str]]:
    from sqlalchemy import select
    from sqlmodel import Session

    from models.catalog import Enterprise
    from models.enrollment import Institution
    from models.operations import Contract, PlatformAccount
    from models.states import AccountState, ContractState

    with Session(engine) as session:
        if what == "account":
            return [(c, "") for c in session.execute(select(Institution.insurance_code).join(
                PlatformAccount, PlatformAccount.institution_id == Institution.id)
                .where(PlatformAccount.state == AccountState.PENDING)).scalars()]
        return [(c, e) for c, e in session.execute(select(Institution.insurance_code, Enterprise.name)
                .join(Contract, Contract.institution_id == Institution.id)
                .join(Enterprise, Enterprise.id == Contract.enterprise_id)
                .where(Contract.state == ContractState.PENDING)).all()]


def _accounts(engine: Engine, script: Script, clock: DatabaseClock, share: float, importer: Callable[..., object]) -> str:
    pending = _pending(engine, "account")
    chosen = [c for c, _ in pending if script.rng.random() < share]
    if not chosen:
        return "无"
    today = clock.today().isoformat()
    rows = [{"机构医保编码": c, "平台账号": f"LN{c}", "注册日期": today} for c in chosen]
    importer(engine, SLUG, data.write_csv(script.files / f"平台账户-{today}.csv", ["机构医保编码", "平台账号", "注册日期"], rows),
             clock=clock, actor="platform")
    return f"{len(rows)} 家完成注册"


def _contracts(engine: Engine, script: Script, clock: DatabaseClock, share: float, importer: Callable[..., object]) -> str:
    pending = _pending(engine, "contract")
    chosen = [p for p in pending if script.rng.random() < share]
    if not chosen:
        return "无"
    today = clock.today()
    rows = [{"机构医保编码": c, "企业名称": e, "年度": str(today.year), "签订日期": today.isoformat()} for c, e in chosen]
    importer(engine, SLUG, data.write_csv(script.files / f"购销协议-{today}.csv", ["机构医保编码", "企业名称", "年度", "签订日期"],
                                          rows), clock=clock, actor="platform")
    return f"{len(rows)} 份协议签订"


def _reapply(engine: Engine, script: Script, clock: DatabaseClock) -> str:
    """Rejected institutions fix what was wrong and apply again, into a continuous-review batch."""
    from sqlalchemy import select
    from sqlmodel import Session

    from models.enrollment import Application, Institution
    from models.states import KIND_LABELS, ApplicationState
    from tasks.intake.application_import import import_applications

    with Session(engine) as session:
        rejected = session.execute(select(Institution).join(Application, Application.institution_id == Institution.id)
                                   .where(Application.state == ApplicationState.REJECTED)).scalars().all()
    rows = [{"单位名称": i.name, "单位地址": i.address, "统一社会信用代码": i.uscc, "法人代表": i.legal_rep,
             "机构医保编码": i.insurance_code, "联系人": i.contact_name, "联系电话": i.phone, "电子邮箱": i.email or "",
             "所属区县": i.district, "机构类别": KIND_LABELS[i.kind], "特药定点": "是" if i.special_designated else "否",
             "承诺配备药品数量": "12", "销售价格承诺": "按中选价", "承诺参加年限": "1",
             "民营三级": "是" if i.private_tertiary else "否", "代采上级机构医保编码": ""}
            for i in rejected[:40] if i.proxy_parent_id is None]
    if not rows:
        return "无"
    path = data.write_csv(script.files / "申请-重新申请.csv", data.APPLICATION_HEADER, rows)
    return f"{import_applications(engine, SLUG, path, clock=clock, actor='institution').created} 家重新申请"


def decide_open_gates(engine: Engine, rng: random.Random, clock: DatabaseClock) -> list[str]:
    """The scripted reviewers: prompt, mostly approving, some rejections with reasons; one district is slow."""
    from models.gate_decisions import decided_ids
    from models.states import GateKind
    from tasks.gates.deciding import decide_gate
    from tasks.gates.rows import GateError, list_gates

    done = []
    today = clock.today()
    for gate in list_gates(engine):
        assert gate.id is not None
        if gate.district == SLOW_DISTRICT and (today - gate.opened_at.astimezone(SHANGHAI).date()).days < 12:
            continue
        decided = decided_ids(gate.decision)
        pending = [i for i in gate.items if i not in decided]
        reject: list[int] = []
        reasons: dict[int, str] = {}
        if gate.kind == GateKind.DISTRICT_REVIEW:
            reject = [i for i in pending if rng.random() < 0.04]
            reasons = {i: rng.choice(DISTRICT_REJECT_REASONS) for i in reject}
        elif gate.kind == GateKind.CITY_REVIEW:
            reject = [i for i in pending if rng.random() < 0.015]
            reasons = {i: "承诺配备药品数量与经营规模不符" for i in reject}
        elif gate.kind == GateKind.DECLARATION_REVIEW and rng.random() < 0.12:
            reject, reasons = pending, {pending[0]: "未提交加盖公章的承诺函"}
        elif gate.kind == GateKind.ALLIANCE_CONFIRMATION:
            reject, reasons = pending[-1:], {pending[-1]: "未按期完成内部审批程序"}
        user = "manager" if gate.district is None else f"reviewer-{gate.district}"
        approve = [i for i in pending if i not in reject]
        try:
            decide_gate(engine, gate.id, approve=approve, reject=reject, reasons=reasons, user_name=user, clock=clock)
        except GateError as exc:
            done.append(f"审批事项 {gate.id} 未能决定：{exc}")
            continue
        done.append(f"{gate.title}：批准 {len(approve)}，驳回 {len(reject)}")
    return done


def run_demo(*, home: Path, days: int | None, console: Console) -> None:
    started = time.monotonic()
    home = home.resolve()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    _prepare_environment(home)

    from core.clock_store import DatabaseClock
    from core.db import shared_engine
    from core.migrate import upgrade
    from flows.clients import shared_api_clients
    from flows.program import program_flow
    from models.states import Role
    from sanjin.errors import USER_ERRORS
    from tasks.programs import load_program, shipped_program_files
    from tasks.users import add_user

    engine = shared_engine()
    upgrade(engine)
    clock = DatabaseClock(engine)
    clock.set(datetime.combine(START, datetime.min.time(), tzinfo=SHANGHAI).replace(hour=9))
    for path in shipped_program_files():
        load_program(engine, path, clock=clock, actor="manager")
    add_user(engine, "manager", Role.PROGRAM_MANAGER, display_name="价格招采处", unit="沈阳市医疗保障局")
    add_user(engine, "observer", Role.OBSERVER, display_name="观察员", unit="沈阳市医疗保障局")
    for district in data.DISTRICTS:  # pages and letters show the unit, never the login "reviewer-<district>"
        add_user(engine, f"reviewer-{district}", Role.DISTRICT_REVIEWER, districts=[district],
                 display_name="审核科", unit=f"{district}医疗保障局",
                 email=f"review{data.DISTRICTS[district]}@ybj.shenyang.example.gov.cn")
    script = build_script(home, engine, console)
    reviewer_rng = random.Random(7)

    end = END if days is None else min(END, START + timedelta(days=days - 1))
    ticks = tick_days(script, end)
    total = len(ticks)
    timings = {"flows": 0.0}

    async def simulate() -> None:
        """All simulated days in one event loop, so Prefect's clients and their API connection are reused."""
        async with shared_api_clients():
            await simulate_days()

    async def simulate_days() -> None:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} 个模拟日"), TimeElapsedColumn(), console=console,
                      transient=False) as progress:
            bar = progress.add_task("模拟中", total=total)
            for day in ticks:
                clock.set(datetime.combine(day, datetime.min.time(), tzinfo=SHANGHAI).replace(hour=9))
                for what, action in script.actions.get(day, []):
                    try:
                        script.log.append(f"{day} {what}：{action()}")
                    except USER_ERRORS as exc:
                        # the whole message: the summary wraps it rather than cutting it mid-sentence (issue #19)
                        script.log.append(f"{day} {what}：被拒绝 — {' '.join(str(exc).split())}")
                t0 = time.monotonic()
                await program_flow(SLUG, reminders=True)
                timings["flows"] += time.monotonic() - t0
                clock.set(datetime.combine(day, datetime.min.time(), tzinfo=SHANGHAI).replace(hour=16))
                script.log.extend(f"{day} {line}" for line in decide_open_gates(engine, reviewer_rng, clock))
                progress.update(bar, advance=1, description=f"{day} {_phase_label(engine, day)}")
            await program_flow(SLUG)

    asyncio.run(simulate())
    if os.environ.get("SANJIN_DEMO_TIMINGS"):
        console.print(f"flows: {timings['flows']:.1f} s over {total} ticks")
    _summary(home, engine, clock, script, console, time.monotonic() - started)


def tick_days(script: Script, end: date) -> list[date]:
    """The simulated days the demo visits: every day of the enrollment rush, every fourth day otherwise,
    and each scripted event with the day after it (so reviews, batches and lists move on)."""
    rush = (date(2025, 9, 8), date(2025, 10, 3))
    days = {rush[0] + timedelta(days=k) for k in range((rush[1] - rush[0]).days + 1)}
    days.update(START + timedelta(days=k) for k in range(0, (end - START).days + 1, 4))
    days.add(date(2025, 9, 16))  # the day after the list window closes: the list goes to the manager
    for event in script.actions:
        days.update({event, event + timedelta(days=1)})
    return sorted(d for d in days if START <= d <= end)


def _phase_label(engine: Engine, day: date) -> str:
    from sqlmodel import Session

    from tasks.programs import get_program

    with Session(engine) as session:
        _, defn = get_program(session, SLUG)
    return "、".join(p.display_label[:6] for p in defn.timeline() if p.window.contains(day)) or "—"


def _summary(home: Path, engine: Engine, clock: DatabaseClock, script: Script, console: Console, seconds: float) -> None:

    from rich.padding import Padding

    from sanjin.status_view import print_status
    from tasks.lists.publication import publish
    from tasks.status import program_status

    published = home / "published"
    results = publish(engine, SLUG, clock=clock, actor="manager", out_dir=published)
    files = [r.files for r in results if r.files]
    status = program_status(engine, SLUG, clock=clock, simulated=True)
    (home / "status.json").write_text(json.dumps(status.as_json(), ensure_ascii=False, indent=2), encoding="utf-8")
    (home / "demo-log.txt").write_text("\n".join(script.log), encoding="utf-8")
    print_status(console, status)
    refused = [line for line in script.log if "被拒绝" in line]
    console.print(f"\n[bold]演示完成 / demo finished[/] in {seconds:.0f} s", markup=True)
    console.print(f"  被拒绝的提交 / refused submissions: {len(refused)}")
    _violations_summary(engine, console)
    for line in refused[:5]:
        console.print(Padding(line, (0, 0, 0, 4)), overflow="fold", highlight=False)  # wrapped, indented
    index = next((r.index for r in results if r.index), None)
    console.print(f"  已发布清单 / published lists: {index or published}")
    for paths in files:
        console.print(f"    {paths.get('html')}  {paths.get('xlsx')}  {paths.get('csv')}")
    console.print(f"  通知 / notices (maildir): {home / 'maildir'}")
    console.print(f"  状态 / status: {home / 'status.json'}  日志 / log: {home / 'demo-log.txt'}")
    console.print(f"  数据库 / database: {home / 'sanjin.db'}")
    console.print("  查看（演示用模拟时钟）/ to look at it (the demo's simulated clock):", highlight=False)
    # One unbroken line, however narrow the terminal: it is a command to copy.
    console.print(f"    SANJIN_CLOCK=database SANJIN_DATABASE_URL=sqlite:///{home / 'sanjin.db'} sanjin status {SLUG}",
                  soft_wrap=True, highlight=False, markup=False)


def _violations_summary(engine: Engine, console: Console) -> None:
    """Violations the compliance pass found, by rule in Chinese: open / all."""
    from sqlmodel import Session

    from models.compliance.codes import RULE_LABELS
    from tasks.compliance.views import counts_by_rule
    from tasks.programs import get_program

    with Session(engine) as session:
        program, _ = get_program(session, SLUG)
    counts = counts_by_rule(engine, program.id or 0)
    opened = sum(o for o, _ in counts.values())
    console.print(f"  合规检查 / violations: 未整改 {opened}，累计 {sum(t for _, t in counts.values())}")
    for rule, (o, t) in sorted(counts.items(), key=lambda kv: -kv[1][1]):
        console.print(f"    {RULE_LABELS[rule]}：未整改 {o}，累计 {t}")

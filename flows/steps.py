"""The Prefect tasks the phase flows are made of: one task run per phase step, never per item.

Each step imports its reconciler when it runs, not when this module is imported. A pooled run woken by a gate
decision starts in a new process (figure 9: decision → running), and importing every phase's reconcilers and
their models for one flow was a third of that process's start; a flow now pays for the steps it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect import task

from core.clock_store import DatabaseClock
from core.db import shared_engine, transaction

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from tasks.phases.alliance import AllianceReport
    from tasks.phases.drug_list import DrugListReport
    from tasks.phases.enrollment import EnrollmentReport


@task(name="reconcile-alliance")
def alliance_step(program: str) -> AllianceReport:
    from tasks.phases.alliance import reconcile_alliance

    engine = shared_engine()
    return reconcile_alliance(engine, program, clock=DatabaseClock(engine))


@task(name="reconcile-drug-list")
def drug_list_step(program: str) -> DrugListReport:
    from tasks.phases.drug_list import reconcile_drug_list

    engine = shared_engine()
    return reconcile_drug_list(engine, program, clock=DatabaseClock(engine))


@task(name="reconcile-enrollment")
def enrollment_step(program: str) -> EnrollmentReport:
    from tasks.phases.enrollment import reconcile_enrollment

    engine = shared_engine()
    return reconcile_enrollment(engine, program, clock=DatabaseClock(engine))


@task(name="republish-institution-list")
def republish_institutions_step(program: str) -> int | None:
    """Republish the participating-institution list if it changed (e.g. a suspension); None if unchanged."""
    from tasks.lists.versions import publish_list
    from tasks.programs import get_program

    engine = shared_engine()
    clock = DatabaseClock(engine)
    with transaction(engine) as session:
        row, defn = get_program(session, program)
        version = publish_list(session, row, defn, "institutions", clock=clock, reason="定期重新发布")
        return None if version is None else version.number


async def progress_artifact(program: str, phase: str) -> None:
    """Keep the phase's table artifact (counts per state) current for Prefect's UI (a flow's own call, not a task)."""
    from prefect.artifacts import acreate_table_artifact

    from models.program_definition import PhaseName
    from tasks.status import program_status

    engine = shared_engine()
    # The table shows phases only: no outbox counts (a pass over every notice, 300,000 after enrollment); a phase's
    # flow shows its own phase, so only that phase's states are counted (the program flow's table shows them all).
    only = None if phase == "program" else {PhaseName(phase)}
    status = program_status(engine, program, clock=DatabaseClock(engine), outbox=False, only=only)
    rows = [{"阶段": p.label, "窗口": f"{p.opens} ~ {p.closes or '长期'}", "状态": p.window,
             "待审批": p.open_gates, "计数": ", ".join(f"{k}={v}" for k, v in sorted(p.counts.items()))}
            for p in status.phases if phase in ("program", p.phase)]
    if phase in ("program", "continuous_review"):
        rows.append(_violations_row(engine, program))
    await acreate_table_artifact(key=f"{program}-{phase}".replace("_", "-").lower(), table=rows,
                          description=f"{status.name} · {status.today.isoformat()}")


@task(name="reconcile-accounts")
def accounts_step(program: str) -> dict[str, object]:
    from dataclasses import asdict

    from tasks.platform.accounts import reconcile_accounts

    engine = shared_engine()
    return asdict(reconcile_accounts(engine, program, clock=DatabaseClock(engine)))


@task(name="reconcile-contracts")
def contracts_step(program: str) -> dict[str, object]:
    from dataclasses import asdict

    from tasks.platform.contracts import reconcile_contracts

    engine = shared_engine()
    return asdict(reconcile_contracts(engine, program, clock=DatabaseClock(engine)))


@task(name="snapshot-progress")
def snapshot_step(program: str) -> bool:
    """Today's funnel counts for the overview's trend: written by the day's first run, a no-op after that."""
    from tasks.reports.progress import take_snapshot

    engine = shared_engine()
    return take_snapshot(engine, program, clock=DatabaseClock(engine))


@task(name="send-notices", retries=2, retry_delay_seconds=30)
def send_notices_step() -> dict[str, int]:
    """Deliver what the outbox holds; safe to retry: each notice is claimed and marked in the database."""
    from dataclasses import asdict

    from tasks.outbox.mailers import mailer_from_settings
    from tasks.outbox.send_notices import send_pending

    engine = shared_engine()
    return asdict(send_pending(engine, mailer_from_settings(), clock=DatabaseClock(engine)))


@task(name="compliance-pass")
def compliance_step(program: str) -> dict[str, object]:
    """Run every compliance rule over the program (set-based; a re-run writes nothing)."""
    from tasks.compliance.compliance_pass import run_compliance_pass

    engine = shared_engine()
    result = run_compliance_pass(engine, program, clock=DatabaseClock(engine))
    return {"opened": result.opened, "closed": result.closed, "payables_created": result.payables_created,
            "by_rule": {o.rule.value: {"found": o.found, "opened": o.opened, "closed": o.closed}
                        for o in result.outcomes}}


@task(name="issue-quarterly-report")
def quarterly_report_step(program: str) -> dict[str, object] | None:
    """In a quarter's first month, issue last quarter's statistics once (a version, sent with the workbook)."""
    from core.settings import get_settings
    from tasks.reports.issue import issue_due_quarterly

    engine = shared_engine()
    issued = issue_due_quarterly(engine, program, clock=DatabaseClock(engine),
                                 out_dir=get_settings().output_dir / "reports")
    return None if issued is None else {"period": issued.period, "version": issued.version,
                                        "notices": issued.notices}


@task(name="enforcement-ladders")
def enforcement_step(program: str) -> dict[str, object]:
    """Open, climb and end the enforcement ladders (set-based; a re-run writes nothing)."""
    from dataclasses import asdict

    from tasks.enforcement.ladder import reconcile_enforcement

    engine = shared_engine()
    return asdict(reconcile_enforcement(engine, program, clock=DatabaseClock(engine)))


def _violations_row(engine: Engine, program: str) -> dict[str, object]:
    """The artifact's row for continuous review's compliance: open violations per rule, in Chinese."""
    from sqlmodel import Session

    from models.compliance.codes import RULE_LABELS
    from tasks.compliance.views import counts_by_rule
    from tasks.programs import get_program

    with Session(engine) as session:
        program_id = get_program(session, program)[0].id or 0
    counts = counts_by_rule(engine, program_id)
    return {"阶段": "合规检查", "窗口": "每日", "状态": "",
            "待审批": sum(o for o, _ in counts.values()),
            "计数": ", ".join(f"{RULE_LABELS[r]}={o}" for r, (o, _) in sorted(counts.items()) if o)}

"""Every code a person may see has a Chinese label in models/labels.py: states, actions, kinds, roles, phases."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from enum import StrEnum
from pathlib import Path

import models
from models import labels, transitions
from models.application_rules import PRICE_OPTION_LABELS, PriceOption
from models.compliance.codes import SubjectType, ViolationRule, ViolationState
from models.enforcement import ExitState, LadderState, Track
from models.gate_deadlines import OnExpiry, ReminderStage
from models.program_definition import PhaseName
from models.progress import FunnelStage
from models.quarterly import QUARTER_COLUMN_LABELS, QUARTER_ROW_LABELS, QuarterColumn, QuarterRow
from models.register import DESIGNATION_STATUS_LABELS, DesignationStatus
from models.reports import ReportKind
from models.states import (
    CATEGORY_LABELS,
    KIND_LABELS,
    AccountState,
    ApplicationState,
    BatchState,
    ContractState,
    Decision,
    DeclarationState,
    EnforcementKind,
    EnforcementState,
    EnterpriseState,
    GateKind,
    GateState,
    InstitutionCategory,
    InstitutionKind,
    InvitationState,
    ListKind,
    NoticeStatus,
    PhaseRunState,
    ReviewLevel,
    Role,
)

# Each enum people see, and the catalog entry that names its values.
LABELLED: dict[type[StrEnum], dict[str, str]] = {
    PhaseName: labels.PHASE_LABELS,
    PhaseRunState: labels.WINDOW_LABELS,
    InvitationState: labels.INVITATION_STATE_LABELS,
    EnterpriseState: labels.ENTERPRISE_STATE_LABELS,
    DeclarationState: labels.DECLARATION_STATE_LABELS,
    ApplicationState: labels.APPLICATION_STATE_LABELS,
    BatchState: labels.BATCH_STATE_LABELS,
    GateKind: labels.GATE_KIND_LABELS,
    GateState: labels.GATE_STATE_LABELS,
    Decision: labels.DECISION_LABELS,
    ReviewLevel: labels.REVIEW_LEVEL_LABELS,
    AccountState: labels.ACCOUNT_STATE_LABELS,
    ContractState: labels.CONTRACT_STATE_LABELS,
    NoticeStatus: labels.NOTICE_STATUS_LABELS,
    ListKind: labels.LIST_KIND_LABELS,
    ViolationRule: labels.VIOLATION_LABELS,
    ViolationState: labels.VIOLATION_STATE_LABELS,
    SubjectType: labels.VIOLATION_SUBJECT_LABELS,
    LadderState: labels.LADDER_STATE_LABELS,
    ExitState: labels.EXIT_STATE_LABELS,
    Track: labels.LADDER_TRACK_LABELS,
    EnforcementKind: labels.ENFORCEMENT_KIND_LABELS,
    EnforcementState: labels.ENFORCEMENT_STATE_LABELS,
    Role: labels.ROLE_LABELS,
    ReportKind: labels.REPORT_KIND_LABELS,
    OnExpiry: labels.GATE_EXPIRY_LABELS,
    FunnelStage: labels.FUNNEL_STAGE_LABELS,
    ReminderStage: labels.REMINDER_STAGE_LABELS,
    QuarterColumn: {k.value: v for k, v in QUARTER_COLUMN_LABELS.items()},
    QuarterRow: {k.value: v for k, v in QUARTER_ROW_LABELS.items()},
    # Input vocabularies: these tables also parse the Chinese words of people's files back into codes.
    InstitutionKind: {k.value: v for k, v in KIND_LABELS.items()},
    InstitutionCategory: {k.value: v for k, v in CATEGORY_LABELS.items()},
    PriceOption: {k.value: v for k, v in PRICE_OPTION_LABELS.items()},
    DesignationStatus: {k.value: v for k, v in DESIGNATION_STATUS_LABELS.items()},
}
# Enums no person sees, and why.
UNSHOWN = {
    "AlertBand",  # the band behind a price alert; people see the rule's label (红色价格预警 …)
    "Reapplication",  # how an upload treats a repeat row; people see the row's message, not the code
    "ThrottleScope",  # which count a failed sign-in adds to; people see 已锁定 or the sign-in page's message
}
NOTICE_TEMPLATES = Path(models.__file__).resolve().parents[1] / "notifications" / "templates"


def _enums_of_models() -> set[type[StrEnum]]:
    found: set[type[StrEnum]] = set()
    for info in pkgutil.walk_packages(models.__path__, "models."):
        module = importlib.import_module(info.name)
        found.update(obj for _, obj in inspect.getmembers(module, inspect.isclass)
                     if issubclass(obj, StrEnum) and obj is not StrEnum and obj.__module__.startswith("models"))
    return found


def test_every_enum_of_models_is_labelled_or_said_to_be_unseen() -> None:
    missing = sorted(e.__name__ for e in _enums_of_models() if e not in LABELLED and e.__name__ not in UNSHOWN)
    assert not missing, f"enums without a label table in models/labels.py: {missing}"


def test_every_value_of_every_labelled_enum_has_a_chinese_label() -> None:
    missing = [f"{enum.__name__}.{member.name}" for enum, table in LABELLED.items() for member in enum
               if not table.get(member.value, "").strip()]
    assert not missing, f"values without a label: {missing}"


def test_every_action_and_entity_of_the_state_machines_has_a_label() -> None:
    machines = [m for m in vars(transitions).values() if isinstance(m, transitions.Machine)]
    actions = {action for m in machines for (_, action) in m.table}
    assert sorted(actions - set(labels.AUDIT_ACTION_LABELS)) == []
    assert sorted({m.entity for m in machines} - set(labels.AUDIT_ENTITY_LABELS)) == []


def test_every_action_and_entity_of_the_enforcement_ladders_and_exits_has_a_label() -> None:
    from models import enforcement

    machines = [m for m in vars(enforcement).values() if isinstance(m, transitions.Machine)]
    assert len(machines) >= 4
    assert sorted({a for m in machines for (_, a) in m.table} - set(labels.AUDIT_ACTION_LABELS)) == []
    assert sorted({m.entity for m in machines} - set(labels.AUDIT_ENTITY_LABELS)) == []


def test_every_notice_kind_has_a_label() -> None:
    kinds = {p.name.removesuffix(".subject.txt") for p in NOTICE_TEMPLATES.glob("*.subject.txt")}
    assert kinds, NOTICE_TEMPLATES
    assert sorted(kinds - set(labels.NOTICE_KIND_LABELS)) == []


def test_labels_are_chinese_words_not_codes() -> None:
    tables = {name: table for name, table in vars(labels).items() if name.isupper() and isinstance(table, dict)
              and all(isinstance(label, str) for label in table.values())}
    not_chinese = [f"{name}[{code}]" for name, table in tables.items() for code, label in table.items()
                   if not any("\u4e00" <= ch <= "\u9fff" for ch in label)]
    assert not not_chinese

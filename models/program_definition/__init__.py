"""Program definitions: the data that makes one region's 三进 program differ from another's.

Every date, deadline and policy number of a program lives in a human-edited YAML file under
``deploy/programs/`` (SPEC: "dates are data, never code").  The people who edit those files are
bureau staff, not programmers, so the schema is strict (``extra="forbid"`` everywhere: a misspelt
key is an error, not a silently ignored line) and the loader reports *every* problem of a file at
once, each with a dotted path such as ``phases[2].window.closes``, instead of making the editor
fix one error per round trip.

Seed documents cited in comments (see ``shared/seeds``): 000 Shenyang 2025, 001 Ningxia 2025,
002 Jiangxi 2025, 003 Yingkou 2019 national VBP, 004 a province's sunshine-procurement opinion.

The only I/O of this package is :func:`load_program_file` (`loading.py`). Its `__init__` is its interface:
import from `models.program_definition`, not from the modules inside.
"""

from __future__ import annotations

from models.program_definition.approval import (
    AllianceSpec,
    ApprovalLevel,
    BatchRule,
    District,
    GateDeadlines,
    GateReminders,
    Invitee,
)
from models.program_definition.base import SHANGHAI, RuleViolations, WindowState
from models.program_definition.letters import Issuer
from models.program_definition.loading import (
    ProgramFileError,
    load_program_file,
    program_content_hash,
    validate_program,
)
from models.program_definition.phases import PhaseName, PhaseSpec, Window
from models.program_definition.program import ProgramDefinition
from models.program_definition.rules import CoverageTarget, MarkupRules, MinDrugCount, PriceAlertBands, Rules

__all__ = [
    "SHANGHAI",
    "AllianceSpec",
    "ApprovalLevel",
    "BatchRule",
    "CoverageTarget",
    "District",
    "GateDeadlines",
    "GateReminders",
    "Invitee",
    "Issuer",
    "MarkupRules",
    "MinDrugCount",
    "PhaseName",
    "PhaseSpec",
    "PriceAlertBands",
    "ProgramDefinition",
    "ProgramFileError",
    "RuleViolations",
    "Rules",
    "Window",
    "WindowState",
    "load_program_file",
    "program_content_hash",
    "validate_program",
]

"""Imports every table so `SQLModel.metadata` is complete (migrations, create_all, tests)."""

from __future__ import annotations

from sqlmodel import SQLModel

from models.audit import AuditChainHead, AuditEvent, AuditLink, AuditLinkMixed
from models.calendar import CalendarDay, CalendarYear
from models.catalog import DeclarationItem, Enterprise, EnterpriseDeclaration, ListEntry, ListVersion, Product
from models.enforcement import BadRecord, EnforcementCase, EnterpriseExit
from models.enrollment import Application, Batch, Gate, Institution, Review
from models.operations import (
    ComplianceMark,
    Contract,
    Delivery,
    EnforcementAction,
    LowestPrice,
    Payment,
    PlatformAccount,
    PriceReport,
    PurchaseOrder,
    QuarterlyReport,
    SalePrice,
    Selection,
    Settlement,
    Violation,
)
from models.outbox import Notice
from models.program import AllianceInvitation, ClockSetting, ImportRecord, PhaseWindow, Program, User
from models.progress import ProgramSnapshot
from models.register import RegisterEntry
from models.reports import ReportVersion
from models.signin import SignInThrottle, WebSession

metadata = SQLModel.metadata

__all__ = [
    "AllianceInvitation", "Application", "AuditChainHead", "AuditEvent", "AuditLink", "AuditLinkMixed", "BadRecord", "Batch", "CalendarDay", "CalendarYear",
    "ClockSetting", "ComplianceMark", "Contract", "DeclarationItem", "Delivery", "EnforcementAction", "EnforcementCase", "Enterprise",
    "EnterpriseDeclaration", "EnterpriseExit", "Gate",
    "ImportRecord", "Institution", "ListEntry", "ListVersion", "LowestPrice", "Notice", "Payment", "PhaseWindow",
    "PlatformAccount", "PriceReport", "Product", "Program", "ProgramSnapshot", "PurchaseOrder", "QuarterlyReport",
    "RegisterEntry", "ReportVersion", "Review", "SalePrice",
    "Selection", "Settlement", "SignInThrottle", "User", "Violation", "WebSession", "metadata",
]

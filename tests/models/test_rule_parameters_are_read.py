"""Every rule parameter of the program file is read by some module: a parameter nothing reads is a promise the
product does not keep (issue #14 found ten of them)."""

from __future__ import annotations

import ast
from pathlib import Path

from pydantic import BaseModel

from models.program_definition import MarkupRules, MinDrugCount, PriceAlertBands, Rules

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("models", "core", "notifications", "tasks", "flows", "deploy", "sanjin", "web")

# Parameters the product does not act on yet, each with the issue that will. Keep this list short and honest:
# the test below also fails when one of them starts being read (then it leaves this list).
LEFT_FOR_LATER: dict[str, str] = {
    "delivery_refusal_removes_enterprise": "issue 15: the enforcement ladder removes the enterprise's products",
    "contract_period": "only 'annual' is admitted; contracts are keyed by year already (tasks/contracts)",
}


def _rule_fields() -> set[str]:
    models: list[type[BaseModel]] = [Rules, MarkupRules, MinDrugCount, PriceAlertBands]
    return {name for model in models for name in model.model_fields}


def _attributes_read() -> set[str]:
    """Every `x.name` in the product's code, outside the schema that declares the fields."""
    names: set[str] = set()
    for package in PRODUCT_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "program_definition" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute):
                    names.add(node.attr)
    return names


def test_every_rule_parameter_of_the_program_file_is_read_by_some_module() -> None:
    unread = _rule_fields() - _attributes_read() - set(LEFT_FOR_LATER)
    assert unread == set(), f"rule parameters no module reads: {sorted(unread)}"


def test_a_parameter_left_for_a_later_issue_leaves_the_list_once_it_is_read() -> None:
    assert set(LEFT_FOR_LATER) <= _rule_fields(), "a listed parameter is no longer in the schema"
    now_read = set(LEFT_FOR_LATER) & _attributes_read()
    assert now_read == set(), f"read now, take them off LEFT_FOR_LATER: {sorted(now_read)}"


def test_the_issue_14_parameters_are_all_read() -> None:
    issue_14 = {"delivery_sla_hours", "payment_due", "payment_due_roll_forward_to_working_day",
                "recommended_share_min", "public_max", "private_max", "pharmacy_max", "pharmacy_max_with_index",
                "online_price_equals_offline", "commit_at_or_below_winning_price", "price_report_working_days",
                "delivery_pattern_count", "delivery_pattern_days", "selection_grace_days", "no_sales_close_months",
                "price_alerts"}
    assert issue_14 - _attributes_read() == set()

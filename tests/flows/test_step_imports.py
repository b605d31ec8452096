"""A flow's steps import their reconcilers when they run (flows/steps.py), so a woken pooled run's new process
imports only what its steps need. What a step imports must then still be whole for SQLAlchemy: every foreign key
of every table it loads must find its table, or the first flush fails (`NoReferencedTableError`, seen when
`batch.list_version_id` lost `listversion` this way). Each check runs in a fresh interpreter: this test process
has imported everything already.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = """
import importlib, sys
from sqlmodel import SQLModel
for name in sys.argv[1:]:
    importlib.import_module(name)
missing = []
for table in SQLModel.metadata.tables.values():
    for fk in table.foreign_keys:
        try:
            fk.column
        except Exception:
            missing.append(f"{table.name}.{fk.parent.name} -> {fk.target_fullname}")
print(missing)
"""


def _imported_inside_functions(path: Path) -> set[str]:
    """Our modules a file imports inside its functions: what its steps load when they run."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0 and \
                        inner.module.split(".")[0] in ("models", "tasks", "core", "notifications"):
                    found.add(inner.module)
    return found


STEP_MODULES = sorted(_imported_inside_functions(ROOT / "flows" / "steps.py")
                      | _imported_inside_functions(ROOT / "flows" / "waiting.py"))
# What a batch that runs imports, together (tasks/phases/enrollment.py, run_matured_batches).
BATCH_RUN = ("tasks.phases.enrollment", *sorted(_imported_inside_functions(ROOT / "tasks" / "phases" / "enrollment.py")))
FLOW_MODULES = sorted(f"flows.{p.stem}" for p in (ROOT / "flows").glob("*.py") if p.stem != "__init__")


def _missing(*modules: str) -> str:
    done = subprocess.run([sys.executable, "-c", CHECK, *modules], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    return done.stdout.strip() if done.returncode == 0 else done.stderr[-1000:]


def test_every_flow_module_and_every_step_module_loads_the_tables_its_foreign_keys_name() -> None:
    assert "tasks.phases.enrollment" in STEP_MODULES and "tasks.lists.versions" in BATCH_RUN
    # A flow module alone, and flows.steps with one step's module: any flow plus any of its steps is then whole
    # (the union of two sets whose foreign keys all resolve resolves too).
    cases = [(m,) for m in FLOW_MODULES] + [("flows.steps", m) for m in STEP_MODULES] + [("flows.steps", *BATCH_RUN)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(cases, pool.map(lambda c: _missing(*c), cases), strict=True))
    assert {case: r for case, r in results.items() if r != "[]"} == {}


@pytest.mark.parametrize("module", ["flows.enrollment"])
def test_a_woken_enrollment_run_does_not_import_the_list_publisher_before_its_step_runs(module: str) -> None:
    """Figure 9's decision → running: the enrollment flow's module loads no phase but its own."""
    code = (f"import sys, {module}; print(sorted(m for m in ('tasks.lists.versions', 'tasks.status', "
            "'tasks.phases.alliance', 'tasks.phases.drug_list', 'tasks.phases.enrollment') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.stdout.strip() == "[]", done.stderr[-1000:]

"""Commands that run no flow do not import Prefect, and help imports no SQLAlchemy either (issue #19: each command
took 1.4–3.8 s to start; `sanjin --help` still spent ~2 s of CPU importing SQLAlchemy, the tables and every
error class of tasks/ — 0.35 s without them, measured 2026-12-06)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported(args: list[str], env: dict[str, str]) -> set[str]:
    """The modules a fresh interpreter imported to run `args` (from -X importtime's report on stderr)."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=str(ROOT), capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}


def test_importing_the_cli_does_not_import_prefect() -> None:
    modules = _imported(["-c", "import sanjin.cli"], dict(os.environ))
    assert "sanjin.cli" in modules and not {m for m in modules if m.split(".")[0] == "prefect"}


def test_gate_list_and_help_run_without_importing_prefect(tmp_path: Path) -> None:
    env = {**os.environ, "SANJIN_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}", "SANJIN_HOME": str(tmp_path)}
    run = [sys.executable, "-c", "import sys; from sanjin.cli import main; sys.argv = ['sanjin', *sys.argv[1:]]; main()"]
    subprocess.run([*run, "db", "upgrade"], cwd=str(ROOT), capture_output=True, timeout=300, env=env, check=True)
    for command in (["--help"], ["gate", "list"]):
        modules = _imported([*run[1:], *command], env)
        assert "sanjin.cli" in modules, command
        assert not {m for m in modules if m.split(".")[0] == "prefect"}, command


def test_help_of_every_command_group_imports_neither_sqlalchemy_nor_prefect(tmp_path: Path) -> None:
    """Reading the help touches no database: SQLAlchemy, the tables and Prefect are imported by the commands that
    use them, and the error classes only when a command fails (sanjin.cli.main)."""
    env = {**os.environ, "SANJIN_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}", "SANJIN_HOME": str(tmp_path)}
    run = ["-c", "import sys; from sanjin.cli import main; sys.argv = ['sanjin', *sys.argv[1:]]; main()"]
    for command in (["--help"], ["run", "--help"], ["gate", "--help"], ["notices", "--help"],
                    ["violations", "--help"], ["report", "--help"], ["enforcement", "--help"], ["calendar", "--help"]):
        modules = _imported([*run, *command], env)
        heavy = {m for m in modules if m.split(".")[0] in ("prefect", "sqlalchemy", "sqlmodel")}
        assert "sanjin.cli" in modules and not heavy, (command, sorted(heavy)[:5])


def test_a_mistake_is_still_a_message_when_the_error_classes_are_imported_late(tmp_path: Path) -> None:
    """The error classes are imported after the failure now: an unknown program is a message and exit code 1."""
    env = {**os.environ, "SANJIN_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}", "SANJIN_HOME": str(tmp_path)}
    run = [sys.executable, "-c", "import sys; from sanjin.cli import main; sys.argv = ['sanjin', *sys.argv[1:]]; main()"]
    subprocess.run([*run, "db", "upgrade"], cwd=str(ROOT), capture_output=True, timeout=300, env=env, check=True)
    done = subprocess.run([*run, "status", "no-such-program"], cwd=str(ROOT), capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "no-such-program" in done.stderr, done.stderr

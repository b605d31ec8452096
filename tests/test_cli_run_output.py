"""`sanjin run` prints what ran in Chinese for staff; Prefect's English INFO lines (run names such as
"quizzical-pelican", the temporary server's address) are an operator's, shown only when asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SANJIN = Path(sys.executable).parent / "sanjin"


def _sanjin(home: Path, *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANJIN_", "PREFECT_LOGGING"))}
    env.update({"SANJIN_HOME": str(home), "PREFECT_HOME": str(home / "prefect"), "COLUMNS": "200", **(extra or {})})
    return subprocess.run([str(SANJIN), *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def test_running_a_phase_shows_staff_the_summary_without_prefects_info_lines(tmp_path: Path) -> None:
    assert _sanjin(tmp_path, "db", "upgrade").returncode == 0
    assert _sanjin(tmp_path, "program", "load", str(ROOT / "deploy/programs/shenyang-2025.yaml")).returncode == 0
    done = _sanjin(tmp_path, "run", "shenyang-2025", "--phase", "alliance")
    assert done.returncode == 0, done.stderr
    assert "已运行 / ran: 联盟邀请" in done.stdout
    assert "INFO" not in done.stderr and "Beginning flow run" not in done.stderr, done.stderr


def test_an_operator_can_ask_for_prefects_info_lines_back(tmp_path: Path) -> None:
    assert _sanjin(tmp_path, "db", "upgrade").returncode == 0
    assert _sanjin(tmp_path, "program", "load", str(ROOT / "deploy/programs/shenyang-2025.yaml")).returncode == 0
    done = _sanjin(tmp_path, "run", "shenyang-2025", "--phase", "alliance", extra={"PREFECT_LOGGING_LEVEL": "INFO"})
    assert done.returncode == 0, done.stderr
    assert "Beginning flow run" in done.stderr

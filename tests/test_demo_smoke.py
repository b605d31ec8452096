"""`make demo` must not rot: its first simulated week runs end to end in a subprocess and summarises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_the_demos_first_week_invites_the_alliance_and_refuses_an_early_declaration(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SANJIN_"))}
    env["COLUMNS"] = "60"  # a narrow terminal: the summary wraps its text, never the command it suggests
    done = subprocess.run([str(Path(sys.executable).parent / "sanjin"), "demo", "--days", "6", "--home", str(home)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "演示完成" in done.stdout
    command = f"SANJIN_CLOCK=database SANJIN_DATABASE_URL=sqlite:///{home / 'sanjin.db'} sanjin status shenyang-2025"
    assert command in [line.strip() for line in done.stdout.splitlines()], done.stdout[-1500:]
    status = json.loads((home / "status.json").read_text(encoding="utf-8"))
    alliance = next(p for p in status["phases"] if p["phase"] == "alliance")
    assert sum(alliance["counts"].values()) == 13  # Liaoning's other cities, each invited once
    log = (home / "demo-log.txt").read_text(encoding="utf-8")
    assert "提前申报（窗口未开）：被拒绝" in log
    assert sum(status["outbox"].values()) >= 13  # the invitation letters (函), sent or kept for print

"""The web benchmark (issue #6 figure 4) runs at a tiny size and checks what it did (correctness, not time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_web_benchmark_times_every_page_and_its_bulk_decisions_approve_everything(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.web", "--institutions", "60", "--requests", "2",
                           "--baseline-requests", "1", "--work-dir", str(tmp_path)],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout[done.stdout.index("\n{") + 1:])
    assert result["checks"]["ok"], result["checks"]
    assert result["checks"]["running_applications"] == 60 and result["checks"]["notices"] == 60
    assert sum(b["approved"] for b in result["bulk_decisions"]["district_gates"]) == 60
    assert result["bulk_decisions"]["city_gate"]["approved"] == 60
    assert {"district_review.reviewer_gate", "city_review.manager_gate", "running.overview"} <= set(result["pages"])
    assert all(p["n"] == 2 and p["p95_ms"] > 0 for p in result["pages"].values())
    assert result["pages"]["running.overview"]["recomputed"]["n"] == 3
    assert set(result["baseline"]["pages"]) <= set(result["pages"])

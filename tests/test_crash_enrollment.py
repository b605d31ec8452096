"""kill -9 during enrollment, CI-sized (issue #18): every application once, in one right state, after any crash."""

from __future__ import annotations

from benchmarks.crash_enrollment import run


def test_enrollment_killed_at_random_moments_ends_with_every_application_once() -> None:
    found = run(rows=150, kills=4, seed=18, max_delay=6.0)
    print(f"\ncrash test: {found['kills']} kills ({found['killed_while_running']} while running), "
          f"{found['applications']} applications in states {found['states']}")
    assert found["problems"] == []

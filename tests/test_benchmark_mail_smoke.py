"""The mail benchmark runs at a tiny size and delivers every message (correctness, not time)."""

from __future__ import annotations

from benchmarks.mail import main


def test_the_mail_benchmark_delivers_every_reminder_and_measures_the_baseline() -> None:
    result = main(["--messages", "60", "--baseline-sample", "20", "--connections", "2"])
    assert result["sent"] == 60 and result["dead"] == 0
    assert result["messages_per_second"] > 0 and result["baseline_messages_per_second"] > 0
    assert result["baseline_sample"] == 20 and result["ratio"] is not None

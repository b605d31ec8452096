"""The mail benchmark (figure 2) at a tiny size: every reminder delivered exactly once with the right headers.

Correctness only, never time: the counts the benchmark checks are asserted here, so a figure can never
be printed for a run that lost, duplicated or garbled messages.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.mail import main


def test_every_due_reminder_reaches_the_smtp_server_exactly_once_with_its_headers(tmp_path: Path) -> None:
    result = main(["--reminders", "60", "--sample", "20", "--connections", "3", "--work-dir", str(tmp_path)])
    checks = result["checks"]
    assert checks["ok"], checks
    assert checks["account_reminders_due"] == checks["enqueued"] == checks["sent"] == 60
    delivery = checks["delivery"]
    assert delivery["received"] == delivery["unique_message_ids"] == 60
    assert delivery["duplicates"] == delivery["missing"] == delivery["unexpected"] == delivery["wrong_recipient"] == 0
    assert delivery["samples_with_right_headers"] == delivery["samples_parsed"] == 20
    assert delivery["server_connections"] == 3  # the pool, not a connection per message
    assert checks["rerun_enqueued"] == checks["rerun_attempted"] == 0  # a second run writes and sends nothing
    assert result["send_report"] == {"sent": 60, "retried": 0, "dead": 0, "skipped": 0}
    baseline = result["baseline"]
    assert baseline["sent"] == baseline["sample"] == 20 and baseline["delivery_ok"]
    assert result["messages_per_second"] > 0 and baseline["messages_per_second"] > 0 and result["ratio"] > 0
    floor = result["smtp_floor"]
    assert floor["messages"] == floor["sent"] == floor["received"] == 60

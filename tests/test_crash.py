"""kill -9, CI-sized (issue #18): enrollment and the sender killed at random moments and restarted, on SQLite and
PostgreSQL; every application once in one right state, every notice delivered at least once and at most twice
under its Message-ID (a real aiosmtpd in another process counts them), and the audit trail verifies (the
function of `sanjin audit verify`, in this process; the full-size script runs the command).

`python -m benchmarks.crash` runs the same at full size (10,000 × 20 kills). The children here are forked from
the test process, which has imported the product already (benchmarks/crash_proc.py): still processes of their
own, killed with SIGKILL.
"""

from __future__ import annotations

import pytest

from benchmarks.crash import run_part, summary
from tests.conftest import PG_URL, require_postgres

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def crash_run(part: str, kind: str, **options: object) -> dict[str, object]:
    if kind == "postgresql":
        require_postgres()
    found = run_part(part, kind, postgres_url=PG_URL, verify_command=False, fork=True,
                     **options)  # type: ignore[arg-type]
    print("\n" + summary(found))
    return found


@pytest.mark.slow  # 28-30 s each at a load average of ~20 on 2 cores (~3 s of CPU)
@pytest.mark.parametrize("kind", DATABASES)
def test_a_sender_killed_as_it_hands_over_its_second_chunk_every_time_delivers_no_notice_three_times(kind):
    """The defect: each restarted sender reclaims the chunk the killed one had delivered and not recorded, sends
    it again first, and dies the same way; it arrived four times after three kills. Now a notice a lost sender
    may have delivered is resent one at a time, each recorded right after the server accepted it, so the
    second sender's kill (as it hands over its next chunk) finds the resent chunk recorded."""
    found = crash_run("notices", kind, size=10, kills=3, kill_at_handoff=2, batch_size=5)
    assert found["killed_while_running"] >= 2  # the crash point was reached: the test is not vacuous
    copies = found["deliveries_per_message_id"]
    # Every notice arrived, none more than twice; the twice-delivered are at most the first chunk (its accepted
    # messages recorded while it was on the wire may have escaped the first kill: seen 4 or 5 of 5).
    assert set(copies) <= {"1", "2"} and sum(copies.values()) == 10 and copies.get("2", 0) <= 5
    assert found["statuses"] == {"sent": 10}
    assert found["problems"] == []


@pytest.mark.slow  # ~20-30 s each under load (two forked senders and a final one)
@pytest.mark.parametrize("kind", DATABASES)
@pytest.mark.parametrize("second_kill", ["careful:1", "end:1", "preempt:1"])
def test_a_notice_delivered_unrecorded_then_resent_carefully_unrecorded_never_arrives_a_third_time(kind, second_kill):
    """The window issue #18 left open: sender 1 dies as the server's 250 for its first message comes back (a copy
    delivered, unrecorded); sender 2 resends that notice carefully and dies right after the server accepted it
    (`careful:1`), or right after its end went out (`end:1`), before the acceptance is recorded. Sender 3 then
    resent it a third time. Now the careful resend's end is committed as going out
    (`second_copy_out`) back to back with it, and such a notice is settled sent, not confirmed, never resent.
    One SMTP connection and one chunk, so the first kill leaves exactly notice 1 delivered and unrecorded and the
    second sender resends it first. `preempt:1` (session 12): sender 2 stalls between writing the end and its
    mark's COMMIT, as a loaded scheduler running the SMTP server first made it, and dies if the server answers the
    end meanwhile — on PostgreSQL it did, {"1": 4, "3": 1} with none unconfirmed (the CI runs' third copy); now the
    end waits in the kernel until the COMMIT has left, so the sender dies after the mark instead."""
    found = crash_run("notices", kind, size=5, kills=2, kill_plan=["accepted:1", second_kill], batch_size=5,
                      connections=1)
    assert found["killed_while_running"] == 2
    assert found["deliveries_per_message_id"] == {"1": 4, "2": 1}  # {"1": 4, "3": 1} before
    assert found["statuses"] == {"sent": 5} and found["unconfirmed"] == 1
    assert found["problems"] == []


@pytest.mark.slow
@pytest.mark.parametrize("kind", DATABASES)
def test_a_send_of_2000_notices_killed_6_times_loses_none_and_delivers_each_at_most_twice(kind):
    """Never a lost notice, never a third copy, on either database. Session 11 tolerated one third copy on
    PostgreSQL (stops 22 and 23 each saw one of 2,000, none left unconfirmed); session 12 found and closed two
    paths to it: a careful resend's end reaching the server before its mark's COMMIT left (the end is now held
    until it has: notifications/smtp.py `_held`), and a lost sender's mark committing while the next sender's
    reclaim put its notice back (tasks/outbox/leases.py `reclaim_expired`). A failure prints the suspects: each
    notice that arrived more than twice or never, its outbox row and its receipts."""
    found = crash_run("notices", kind, size=2000, kills=6, batch_size=200)
    suspects = found.get("suspects")
    assert found["killed_while_running"] == 6
    assert found["statuses"] == {"sent": 2000} and found["idempotency_keys"] == 2000, suspects
    assert found["min_deliveries"] == 1 and found["max_deliveries"] <= 2, (found["deliveries_per_message_id"], suspects)
    assert found["audit_verify"]["exit"] == 0
    assert found["problems"] == [], suspects


@pytest.mark.slow
@pytest.mark.parametrize("kind", DATABASES)
def test_enrollment_of_1000_applications_killed_6_times_ends_with_each_once_in_one_state(kind):
    found = crash_run("enrollment", kind, size=1000, kills=6, max_delay=4.0)
    assert found["killed_while_running"] >= 3  # at least half the kills fell on a child at work
    assert found["applications"] == found["institutions_applied"] == found["submit_audits"] == 1000
    assert found["states"] == {"submitted": 1000} and found["imports"] == 1
    assert found["audit_verify"]["exit"] == 0
    assert found["problems"] == []

"""The benchmark runner at tiny sizes, as CI runs it: every figure present and the counts right, never time.

Two sizes (200 and 400 institutions) show that the product's Prefect task runs do not grow with N.
Each `main` call starts Prefect's test harness once and runs every benchmark in a child process, so
this module costs about two minutes; it is one test so xdist gives it one worker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.runner import main

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("benchmarks-smoke")]

FIGURES = {"1_enrollment", "2_reminders", "3_publication", "4_web", "5_gate_round_trip",
           "6_prefect_overhead", "7_peak_rss", "8_compliance", "9_topology"}


def _run(tmp_path: Path, name: str, *args: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / f"{name}.json"
    code = main([*args, "--db", "sqlite", "--json", str(out)])
    return code, json.loads(out.read_text(encoding="utf-8"))


def _failed(report: dict[str, Any]) -> str:
    """The figures that did not come out, so a red CI says which one and why."""
    bad = {name: {db: {k: fig.get(k) for k in ("status", "failure", "error", "checks")}
                  for db, fig in by_db.items() if isinstance(fig, dict) and fig.get("status") != "ok"}
           for name, by_db in report["figures"].items()}
    return json.dumps({k: v for k, v in bad.items() if v}, ensure_ascii=False, default=str)[:4000]


def test_every_figure_with_correct_counts_and_task_runs_independent_of_size(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, small = _run(tmp_path, "small", "--institutions", "200", "--products", "50", "--sample", "20",
                       "--gate-institutions", "20", "--gate-baseline-poll", "2", "--task-run-recorder", "on",
                       "--reminders", "50", "--smtp-connections", "4", "--web-requests", "3", "--seal-pairs", "1")
    printed = capsys.readouterr().out
    assert code == 0, _failed(small)
    assert "1 enrollment" in printed and '"figures"' in printed  # the table, then the JSON
    figures = small["figures"]
    assert set(figures) == FIGURES
    web = figures["4_web"]["sqlite"]
    assert web["status"] == "ok", web
    assert web["checks"]["ok"] and web["checks"]["running_applications"] == 200, web["checks"]
    assert web["bulk_decisions"]["city_gate"]["approved"] == 200
    # Every page and download timed `requests` times; a download to its first bytes, and read whole once beside it.
    timed = {k: web["pages"][k]["n"] for k in web["targeted_pages"]}
    assert all(n == 3 for n in timed.values()), timed
    downloads = [k for k in web["targeted_pages"] if ".export_" in k]
    assert downloads and all(web["pages"][k]["full_ms"] > 0 and web["pages"][k]["bytes"] > 0 for k in downloads)
    assert web["verdict"] in ("met", "MISSED")  # judged, not asserted
    assert "4 dashboard" in printed
    assert "2 reminders" in printed

    reminders = figures["2_reminders"]["sqlite"]
    assert reminders["status"] == "ok", reminders
    assert reminders["checks"]["ok"], reminders["checks"]
    delivery = reminders["checks"]["delivery"]
    assert reminders["reminders"] == reminders["checks"]["sent"] == delivery["received"] == 50
    assert delivery["unique_message_ids"] == 50 and delivery["duplicates"] == delivery["missing"] == 0
    assert delivery["samples_with_right_headers"] == delivery["samples_parsed"] > 0
    assert delivery["server_connections"] == 4
    assert reminders["baseline"]["sent"] == 20 and reminders["baseline"]["ratio"] is not None
    assert reminders["smtp_floor"]["sent"] == reminders["smtp_floor"]["received"] == 50
    assert reminders["verdict"] in ("met", "MISSED")  # time is not asserted, only that it was judged

    enrollment = figures["1_enrollment"]["sqlite"]
    assert enrollment["status"] == "ok", enrollment
    checks = enrollment["checks"]
    assert checks["ok"], checks
    assert checks["running_applications"] == checks["institution_list_entries"] == checks["platform_accounts"] == 200
    assert checks["batches"] == 1 and checks["gates_open"] == 0
    assert enrollment["decisions"]["city"]["gates"] == 1 and enrollment["decisions"]["district"]["gates"] >= 2
    # Both floors wrote what they say: LIMITS.md's, and the one writing every row figure 1 writes.
    floor = enrollment["floor"]
    assert floor["counts"]["ok"] and floor["same_io"]["counts"]["ok"], floor
    assert floor["same_io"]["counts"]["reviews"] == 400 and floor["same_io"]["counts"]["notices"] == 600
    runs = enrollment["task_runs"]
    assert runs["client_side"] == runs["expected"] == 6
    assert runs["api"]["task_runs"] == 6  # the recorder is on: Prefect's API agrees with the client-side count
    per_institution = enrollment["baselines"]["task_run_per_institution"]
    assert per_institution["task_runs_client_side"] == 20 and per_institution["api"]["task_runs"] == 20
    assert enrollment["baselines"]["orm_row_by_row"]["sample"] == 20
    # Each stage's CPU by where it ran, and the SQLite log at its start and end (issue #17: where copying lands).
    split, log = enrollment["cpu_stages_split"], enrollment["sqlite_log_stages"]
    assert set(split) == set(log) == set(enrollment["cpu_stages"])
    assert all({"main_thread", "log_copier", "other_threads", "api_server", "database_backends"} <= set(s)
               for s in split.values()), split
    assert all(s["at_end"]["copied"] <= s["at_end"]["frames"] for s in log.values()), log

    publication = figures["3_publication"]["sqlite"]
    assert publication["checks"]["ok"], publication["checks"]
    assert publication["drugs"]["entries"] == 50  # 50 + 1 new − 1 dropped, 1 new price
    assert publication["drugs"]["diff"] == {"added": 1, "removed": 1, "changed": 1}
    assert publication["institutions"]["entries"] == 202  # 200 + 2 new; 1 moved, 1 suspended (listed with its mark)
    assert publication["institutions"]["diff"] == {"added": 2, "removed": 0, "changed": 2}

    gate = figures["5_gate_round_trip"]["sqlite"]
    assert gate["checks"]["ok"], gate["checks"]
    trips = gate["round_trips"]
    assert [(t["gate"], t["via"]) for t in trips] == [("district_review", "in-process"), ("district_review", "cli"),
                                                      ("city_review", "in-process")]
    assert all(t["flow_running_s"] >= t["decide_s"] > 0 for t in trips if t["via"] == "in-process")
    # The command-line decision really resumed the run: it printed the resume, and the run left PAUSED after it.
    assert "resumed run" in trips[1]["resume_message"], trips[1]
    assert trips[1]["left_paused_s"] >= trips[1]["process_s"] > 0

    overhead = figures["6_prefect_overhead"]["sqlite"]
    assert 0 < overhead["share"] < 1 and overhead["task_runs"] == 6

    rss = figures["7_peak_rss"]
    assert {"enrollment.sqlite", "reminders.sqlite", "publication.sqlite", "web.sqlite", "gate.sqlite"} <= set(rss)
    assert all(rss[k]["peak_rss_mb"] > 0 for k in ("enrollment.sqlite", "publication.sqlite", "gate.sqlite"))

    compliance = figures["8_compliance"]["sqlite"]  # 10 order lines per institution: 2,000 here
    assert compliance["status"] == "ok", compliance
    assert compliance["checks"]["ok"], compliance
    assert compliance["rows"]["orders"] == compliance["import"]["created"] == 2_000
    assert compliance["rows"]["prices"] == 200
    # Every delivery seen; payables written only for those not paid on time by their order's one settlement.
    assert compliance["rows"]["deliveries_seen"] == compliance["rows"]["deliveries"] > compliance["rows"]["payables"] > 0
    assert compliance["pass"]["rerun_opened"] == compliance["pass"]["rerun_closed"] == 0  # a reconciler
    for rule in ("late_delivery", "late_payment", "sale_price", "supply_above_winning_price", "price_alert_yellow"):
        assert compliance["pass"]["by_rule"][rule] > 0, compliance["pass"]["by_rule"]
    assert compliance["ratio"] is not None and compliance["verdict"] in ("met", "MISSED")  # judged, not asserted
    assert compliance["calamine_rows_per_second"] > 0 and "8 compliance" in printed

    assert figures["9_topology"]["sqlite"]["status"] == "skipped"  # a server and workers: PostgreSQL only

    code, large = _run(tmp_path, "large", "--institutions", "400", "--only", "enrollment", "--sample", "10",
                       "--seal-pairs", "2")
    assert code == 0
    bigger = large["figures"]["1_enrollment"]["sqlite"]
    assert bigger["checks"]["ok"] and bigger["checks"]["running_applications"] == 400
    sealing = bigger["sealing"]  # two pairs, off/on then on/off: two runs a side, medians compared
    assert sealing["checks_ok"] and len(sealing["sealed_runs_seconds"]) == len(sealing["unsealed_runs_seconds"]) == 2
    assert bigger["task_runs"]["client_side"] == runs["client_side"]  # independent of N
    assert bigger["task_runs"]["by_task"] == runs["by_task"]
    assert large["figures"]["3_publication"]["status"] == "not run"


def test_the_seal_pairs_are_summarised_by_their_median_range_and_quartiles() -> None:
    """Figure 1's `--seal-pairs` (issue #18): each pair's cost is kept and summarised, so a run of 8-10 pairs can
    be cited with its scatter, not only as the medians' difference."""
    from benchmarks.enrollment import _spread

    assert _spread([2.9, 13.2, -9.1, 1.3, 8.2]) == {"median": 2.9, "min": -9.1, "max": 13.2, "q1": 1.3, "q3": 8.2}
    assert _spread([4.0]) == {"median": 4.0, "min": 4.0, "max": 4.0, "q1": 4.0, "q3": 4.0}
    assert _spread([]) == {}

"""Turning the children's results into the figures of issue #6, a table and JSON."""

from __future__ import annotations

from typing import Any

TARGETS = {
    ("enrollment", "sqlite"): 15.0,
    ("enrollment", "postgres"): 30.0,
    "publication": 5.0,
    "gate": 2.0,
    "suspend": 5.0,
}
REMINDERS_TARGET_MESSAGES_PER_SECOND = 2000.0
def _ratio(baseline: float | None, product: float | None) -> float | None:
    if baseline is None or product is None or product <= 0:
        return None
    return round(baseline / product, 2)


def _verdict(value: float | None, target: float | None) -> str | None:
    if value is None or target is None:
        return None
    return "met" if value <= target else "MISSED"


def _ok(run: dict[str, Any] | None) -> bool:
    return run is not None and run.get("status") == "ok"


def build_figures(runs: dict[str, dict[str, Any]], args: Any, api_rss: float | None) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    figures["1_enrollment"] = _per_db(runs, "enrollment", args, _enrollment)
    figures["2_reminders"] = _per_db(runs, "reminders", args, _reminders)
    figures["3_publication"] = _per_db(runs, "publication", args, _publication)
    figures["4_web"] = _per_db(runs, "web", args, _web)
    figures["5_gate_round_trip"] = _per_db(runs, "gate", args, _gate)
    figures["6_prefect_overhead"] = _per_db(runs, "enrollment", args, _overhead)
    figures["7_peak_rss"] = _rss(runs, api_rss)
    figures["8_compliance"] = _per_db(runs, "compliance", args, _compliance)
    figures["9_topology"] = _per_db(runs, "topology", args, _topology)
    return figures


def _per_db(runs: dict[str, dict[str, Any]], figure: str, args: Any, fn: Any) -> dict[str, Any]:
    if figure not in args.only:
        return {"status": "not run", "why": f"--only {','.join(args.only)}"}
    out: dict[str, Any] = {}
    for db in args.dbs:
        run = runs.get(f"{figure}.{db}")
        out[db] = fn(run, db) if _ok(run) else {"status": "error", "error": (run or {}).get("error", "not run"),
                                                 "log_tail": (run or {}).get("log_tail")}
    return out


COMPLIANCE_RATIO_TARGET = 2.0  # the pass at most 2× the plain-SQL script doing the same joins
COMPLIANCE_RSS_TARGET_MB = 1024.0


def _compliance(run: dict[str, Any], db: str) -> dict[str, Any]:
    """Figure 8: the compliance pass beside plain SQL, the order import beside the calamine read floor."""
    ratio, rss = run["ratio"], run["peak_rss_mb_product"]
    return {
        "status": "ok", "orders": run["orders"], "price_institutions": run["price_institutions"],
        "pass_seconds": run["pass"]["seconds"], "plain_sql_seconds": run["plain_sql"]["seconds"],
        "rerun_seconds": run["pass"]["rerun_seconds"],
        "plain_sql_differs_from_pass": run.get("plain_sql_differs_from_pass", {}),
        "ratio": ratio, "target_ratio": COMPLIANCE_RATIO_TARGET,
        "verdict": None if ratio is None else ("met" if ratio <= COMPLIANCE_RATIO_TARGET else "MISSED"),
        "peak_rss_mb": rss, "rss_verdict": "met" if rss <= COMPLIANCE_RSS_TARGET_MB else "MISSED",
        "import_rows_per_second": run["import"]["rows_per_second"],
        "calamine_rows_per_second": run["import"]["calamine_rows_per_second"],
        "pass": run["pass"], "import": run["import"], "plain_sql": run["plain_sql"], "rows": run["rows"],
        "checks": run["checks"],
    }


def _enrollment(run: dict[str, Any], db: str) -> dict[str, Any]:
    target = TARGETS[("enrollment", db)]
    orm = run["baselines"]["orm_row_by_row"]
    per = run["baselines"]["task_run_per_institution"]
    import_seconds = run["stages"]["import + validation (import_applications)"]
    flows_seconds = run["time_in"]["flows_wall"]
    failure = run.get("failure")
    return {
        "status": "ok" if failure is None else "failed",
        "failure": failure,
        "institutions": run["institutions"],
        "seconds": run["seconds"], "target_seconds": target,
        "verdict": _verdict(run["seconds"], target) if failure is None else f"FAILED at {failure['stage']}",
        "stages": run["stages"],
        "cpu_seconds": run.get("cpu_seconds"), "cpu": run.get("cpu"), "cpu_stages": run.get("cpu_stages"),
        "cpu_stages_split": run.get("cpu_stages_split"), "sqlite_log_stages": run.get("sqlite_log_stages"),
        "collector": run.get("collector"),
        "task_runs": run["task_runs"],
        "task_runs_independent_of_n": failure is None and run["task_runs"]["client_side"] == run["task_runs"]["expected"],
        "checks": run["checks"],
        "audit_chain": run.get("audit_chain"),
        "sealing": run.get("sealing"),
        "floor": run.get("floor"),
        "outcome": run["outcome"],
        "decisions": run["decisions"],
        "flows": run["flows"],
        "baselines": {
            "task_run_per_institution": {**per, "compared_with": "the product's flows (wall time)",
                                         "product_seconds": flows_seconds,
                                         "ratio": _ratio(per["seconds"], flows_seconds),
                                         "task_runs_ratio": _ratio(per["task_runs_at_n"],
                                                                   run["task_runs"]["client_side"])},
            "orm_row_by_row": {**orm, "compared_with": "the product's whole import (read + validate + write)",
                               "product_seconds": import_seconds, "ratio": _ratio(orm["seconds"], import_seconds)},
        },
        "peak_rss_mb_product": run.get("peak_rss_mb_product"),
        "profiles": run.get("profiles") or None,
    }


def _reminders(run: dict[str, Any], db: str) -> dict[str, Any]:
    """Figure 2: messages/s from "due" to delivered; the baseline's ratio compares the sending stage alone."""
    target = REMINDERS_TARGET_MESSAGES_PER_SECOND
    rate = run["messages_per_second"]
    base = run["baseline"]
    send = run["stages"]["outbox_to_delivered"]
    n = run["send_report"]["sent"] or 1
    return {
        "status": "ok",
        "reminders": run["reminders_due"], "smtp_connections": run["smtp_connections"],
        "receiver": run.get("receiver"), "receiver_loop": run.get("receiver_loop"),
        "seconds": run["seconds"], "messages_per_second": rate, "target_messages_per_second": target,
        "verdict": None if rate is None else ("met" if rate >= target else "MISSED"),
        "send_messages_per_second": run["send_messages_per_second"],
        "stages": run["stages"],
        "cpu_us_per_message": {"sender": round(send["cpu_seconds"] / n * 1e6),
                               "smtp_server": round(send["server_cpu_seconds"] / n * 1e6)},
        "checks": run["checks"],
        "baseline": {**base, "compared_with": "the product's sending stage (outbox → delivered)",
                     "product_messages_per_second": run["send_messages_per_second"],
                     "ratio": round(run["send_messages_per_second"] / base["messages_per_second"], 2)
                     if base.get("messages_per_second") else None},
        "smtp_floor": {**run["smtp_floor"], "share_reached": round(run["send_messages_per_second"]
                                                                     / run["smtp_floor"]["messages_per_second"], 2)
                       if run["smtp_floor"].get("messages_per_second") else None},
        "peak_rss_mb_product": run.get("peak_rss_mb_product"),
        "smtp_server_peak_rss_mb": run.get("server_peak_rss_mb"),
        "profiles": run.get("profiles") or None,
    }


def _publication(run: dict[str, Any], db: str) -> dict[str, Any]:
    target = TARGETS["publication"]
    out: dict[str, Any] = {"status": "ok", "target_seconds_each": target, "checks": run["checks"]}
    for name in ("drugs", "institutions"):
        part = run[name]
        baselines = {}
        for key, base in part["baselines"].items():
            baselines[key] = {**base, "ratio": _ratio(base["seconds"], part["seconds"])}
        out[name] = {**part, "verdict": _verdict(part["seconds"], target), "baselines": baselines}
    out["seconds_both"] = round(run["drugs"]["seconds"] + run["institutions"]["seconds"], 3)
    out["verdict_both"] = _verdict(out["seconds_both"], target)
    out["profiles"] = run.get("profiles") or None
    return out


def _web(run: dict[str, Any], db: str) -> dict[str, Any]:
    """Figure 4: server time of the overview and the inbox pages; the baseline is the first cut's data work."""
    return {"status": "ok", "institutions": run["institutions"], "target_p95_ms": run["target_p95_ms"],
            "p95_ms_max": run["p95_ms_max_overview_inbox"],
            "verdict": "met" if run["meets_target"] else "MISSED",
            "targeted_pages": run["targeted_pages"], "pages": run["pages"], "baseline": run["baseline"],
            "bulk_decisions": run["bulk_decisions"], "checks": run["checks"],
            "peak_rss_mb_product": run.get("peak_rss_mb_product"), "profiles": run.get("profiles") or None}


def _gate(run: dict[str, Any], db: str) -> dict[str, Any]:
    target = TARGETS["gate"]
    base = run["baseline"]
    return {"status": "ok", **{k: v for k, v in run.items() if k not in ("status", "baseline")},
            "target_seconds": target, "verdict": _verdict(run["seconds"], target),
            "verdict_flow_running": _verdict(run["flow_running_seconds"], target),
            "baseline": {**base, "ratio": _ratio(base["seconds"], run["seconds"]),
                         "ratio_flow_running": _ratio(base["flow_running_seconds"], run["flow_running_seconds"])}}


def _topology(run: dict[str, Any], db: str) -> dict[str, Any]:
    """Figure 9: a real server and workers. Suspend vs pause, flow start, and programs spread over workers."""
    if "skipped" in run:
        return {"status": "skipped", "why": run["skipped"]}
    return {"status": "ok", **{k: v for k, v in run.items() if k != "status"}, "target_seconds": TARGETS["suspend"],
            "verdict": _verdict(run["seconds"], TARGETS["suspend"])}


def _topology_rows(t: dict[str, Any], add: Any) -> None:
    for db, r in t.items():
        if r.get("status") == "skipped":
            continue
        if r.get("status") != "ok":
            add("9 topology", db, "ERROR", str(r.get("error"))[:160])
            continue
        floor = r["floor"]["seconds"]
        pause = r.get("pause") or {}
        first = True
        for name, s in r.get("suspend", {}).items():
            target = ("≤ 5 s", _verdict(s["flow_running_seconds"], TARGETS["suspend"])) if name == "sanjin" else ("", "")
            add("9 topology" if first else "", db,
                f"decision → flow code running, suspended run, worker set-up {name}", _fmt(s["flow_running_seconds"]),
                f"paused in-process (poll {pause.get('poll_seconds')} s)", _fmt(pause.get("flow_running_seconds")),
                _ratio_text(_ratio(pause.get("flow_running_seconds"), s["flow_running_seconds"])), *target)
            add("", "", f"  decision → Running state ({name})", _fmt(s["running_state_seconds"]), "paused: Running",
                _fmt(pause.get("running_state_seconds")))
            first = False
        for name, f in r.get("flow_start", {}).items():
            add("", "", f"run created → flow code running on a worker ({name})", _fmt(f["created_to_flow_code_s"]),
                "import floor of a flow process", _fmt(floor), _ratio_text(_ratio(floor, f["created_to_flow_code_s"])))
        sp = r.get("spread")
        if sp:
            add("9 topology" if first else "", db,
                f"enrollment of {sp['institutions']:,} over {sp['programs']} programs: 2 workers",
                _fmt(sp["2_workers"]["seconds"]), "1 worker", _fmt(sp["1_worker"]["seconds"]), f"{sp['speed_up']}× faster")
        for part, error in (r.get("errors") or {}).items():
            add("", "", f"ERROR in {part}", str(error)[:160])


def _overhead(run: dict[str, Any], db: str) -> dict[str, Any]:
    """Prefect's share of figure 1: the flows' wall time minus our code inside them, over the whole run."""
    t = run["time_in"]
    total = run["seconds"]
    overhead = max(t["flows_wall"] - t["task_functions"] - t["flow_bodies_product_code"], 0.0)
    per = run["baselines"]["task_run_per_institution"]
    # Baseline: the same run with one task run per institution instead of the product's few.
    base_overhead = per["seconds"]
    base_total = total - overhead + base_overhead
    return {
        "status": "ok" if not run.get("failure") else "partial",
        "note": None if not run.get("failure") else "figure 1 failed: shares of the stages run before the failure",
        "total_seconds": total,
        "flows_wall_seconds": t["flows_wall"],
        "task_function_seconds": t["task_functions"],
        "flow_body_product_seconds": t["flow_bodies_product_code"],
        "outside_prefect_seconds": t["outside_prefect"],
        "prefect_overhead_seconds": round(overhead, 3),
        "share": round(overhead / total, 4) if total else None,
        "task_runs": run["task_runs"]["client_side"],
        "baseline": {"what": "one Prefect task run per institution (extrapolated) in place of the product's "
                             "orchestration", "prefect_overhead_seconds": base_overhead,
                     "total_seconds": round(base_total, 3),
                     "share": round(base_overhead / base_total, 4) if base_total else None,
                     "ratio": _ratio(base_overhead, overhead)},
    }


def _rss(runs: dict[str, dict[str, Any]], api_rss: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    floor = runs.get("floor.-")
    for key, run in runs.items():
        if key.startswith("floor"):
            continue
        entry = {"peak_rss_mb": run.get("child_peak_rss_mb"),
                 "measured": "VmHWM of the benchmark's own child process (/proc/self/status at its end)",
                 "ru_maxrss_wait4_mb": run.get("child_ru_maxrss_wait4_mb"),
                 "ru_maxrss_note": "inflated: Linux keeps maxrss across execve, so it includes the runner's RSS "
                                   "at fork"}
        if "peak_rss_mb_product" in run:
            entry["peak_rss_mb_before_baselines"] = run["peak_rss_mb_product"]
        if floor is not None and _ok(floor):
            entry["baseline"] = {"what": "a process that only imports Prefect and the product",
                                 "peak_rss_mb": floor.get("child_peak_rss_mb"),
                                 "ratio": _ratio(run.get("child_peak_rss_mb"), floor.get("child_peak_rss_mb"))}
        out[key] = entry
    out["prefect_api_server"] = {"peak_rss_mb": api_rss, "measured": "VmHWM of the harness's server subprocess, "
                                                                     "shared by every benchmark"}
    return out


# --------------------------------------------------------------------------- the table


def _fmt(value: Any, unit: str = "s") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if unit == "%":
            return f"{value * 100:.1f} %"
        if unit == "s":
            return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"
        return f"{value:.1f} {unit}"
    return f"{value} {unit}".strip()


def _ratio_text(r: float | None) -> str:
    return "—" if r is None else f"{r:g}×"


def table_rows(document: dict[str, Any]) -> list[list[str]]:
    f = document["figures"]
    rows: list[list[str]] = []

    def add(fig: str, db: str, measure: str, value: str, base_what: str = "", base: str = "", ratio: str = "",
            target: str = "", verdict: str | None = "") -> None:
        rows.append([fig, db, measure, value, base_what, base, ratio, target, verdict or ""])

    def not_run(fig: str, entry: dict[str, Any]) -> bool:
        if entry.get("status") in ("not run", "not yet"):
            add(fig, "", entry["status"], entry.get("why", ""))
            return True
        return False

    e = f["1_enrollment"]
    if not not_run("1 enrollment", e):
        for db, r in e.items():
            if r.get("status") not in ("ok", "failed"):
                add("1 enrollment", db, "ERROR", str(r.get("error"))[:160])
                continue
            n = r["institutions"]
            if r.get("failure"):
                add("1 enrollment", db, f"{n:,} institutions: the product FAILED", r["failure"]["error"][:160],
                    "", "", "", "", f"FAILED at {r['failure']['stage']}")
            per, orm = r["baselines"]["task_run_per_institution"], r["baselines"]["orm_row_by_row"]
            add("1 enrollment", db, f"{n:,} institutions, end to end" + (" (until the failure)" if r.get("failure") else ""),
                _fmt(r["seconds"]),
                "", "", "", f"≤ {r['target_seconds']:g} s", r["verdict"])
            for stage, sec in r["stages"].items():
                add("", "", f"  {stage}", _fmt(sec))
            if fl := r.get("floor"):
                add("", "", "  end to end vs its floor (plain script, LIMITS.md's)", _fmt(fl["product_seconds"]),
                    "calamine + pydantic + Core + 3 transitions + outbox", _fmt(fl["seconds"]),
                    _ratio_text(fl["ratio"]), f"≤ {fl['target_ratio']:g}×", fl["verdict"] or "")
                if fl.get("cpu_ratio") is not None:
                    add("", "", "  … the same, CPU seconds (process + API server + database)",
                        _fmt(fl["product_cpu_seconds"]), "floor's CPU", _fmt(fl["cpu_seconds"]),
                        _ratio_text(fl["cpu_ratio"]), f"≤ {fl['target_ratio']:g}×", fl["cpu_verdict"] or "")
                if fl.get("warm_cpu_ratio") is not None:
                    add("", "", "  … the product's third run (warm, sealed) vs the floor: wall / CPU",
                        f"{_fmt(fl['warm_product_seconds'])} / {_fmt(fl['warm_product_cpu_seconds'])}", "floor",
                        f"{_fmt(fl['seconds'])} / {_fmt(fl['cpu_seconds'])}",
                        f"{_ratio_text(fl['warm_ratio'])} / {_ratio_text(fl['warm_cpu_ratio'])}",
                        f"≤ {fl['target_ratio']:g}×")
                if not fl.get("counts", {}).get("ok", True):
                    add("", "", "  the floor's counts are WRONG", str(fl["counts"]), "", "", "", "", "MISSED")
            if same := (r.get("floor") or {}).get("same_io"):
                add("", "", "  end to end vs the same-I/O floor (every row figure 1 writes), wall / CPU",
                    f"{_fmt(same['product_seconds'])} / {_fmt(same['product_cpu_seconds'])}",
                    "+ reviews, gates, list, accounts, 3 notice sets, 4 transitions",
                    f"{_fmt(same['seconds'])} / {_fmt(same['cpu_seconds'])}",
                    f"{_ratio_text(same['ratio'])} / {_ratio_text(same['cpu_ratio'])}", f"≤ {same['target_ratio']:g}×",
                    same["cpu_verdict"] or "")
                if not same.get("counts", {}).get("ok", True):
                    add("", "", "  the same-I/O floor's counts are WRONG", str(same["counts"]), "", "", "", "", "MISSED")
            if se := r.get("sealing"):
                add("", "", f"  audit sealed vs seal switched off (same process, medians of {se.get('pairs', 1)} pairs)",
                    _fmt(se["sealed_seconds"]),
                    "no seal", _fmt(se["unsealed_seconds"]), f"{se['cost_percent']:+.1f} %"
                    if se["cost_percent"] is not None else "", "≤ +5 %",
                    "" if se["cost_percent"] is None else "met" if se["cost_percent"] <= 5.0 else "MISSED")
                if se.get("cpu_cost_percent") is not None:
                    add("", "", "  … the same, CPU seconds (process + API server + database)",
                        _fmt(se["sealed_cpu_seconds"]), "no seal",
                        _fmt(se["unsealed_cpu_seconds"]), f"{se['cpu_cost_percent']:+.1f} %", "≤ +5 %",
                        "met" if se["cpu_cost_percent"] <= 5.0 else "MISSED")
                for label, key, spread in (("wall", "pair_cost_percent", "pair_spread"),
                                           ("CPU", "pair_cpu_cost_percent", "pair_cpu_spread")):
                    if se.get(key) and se.get(spread):
                        sp = se[spread]
                        add("", "", f"  … each pair's seal cost, {label} (sealed − unsealed, in run order)",
                            ", ".join(f"{c:+.1f}" for c in se[key]), "pairs' median / min … max / IQR",
                            f"{sp['median']:+.1f} % / {sp['min']:+.1f} … {sp['max']:+.1f} / "
                            f"{sp['q1']:+.1f} … {sp['q3']:+.1f}", "", "", "")
            if ch := r.get("audit_chain"):
                add("", "", "  audit trail verifies (rows walked)", f"{ch['rows']:,}", "", "", "", "intact",
                    "met" if ch["intact"] else "MISSED")
            add("", "", "  flows (wall) vs 1 task run / institution", _fmt(per["product_seconds"]),
                f"task run per institution ({'extrap. from ' + format(per['sample'], ',') if per['extrapolated'] else 'measured'})",
                _fmt(per["seconds"]), _ratio_text(per["ratio"]))
            add("", "", "  Prefect task runs", str(r["task_runs"]["client_side"]) +
                (f" (API {r['task_runs']['api']['task_runs']})" if r["task_runs"].get("api") else ""),
                "task run per institution", f"{n:,}", _ratio_text(per["task_runs_ratio"]), "independent of N",
                "met" if r["task_runs_independent_of_n"] else "MISSED")
            add("", "", "  import vs ORM add+flush per row", _fmt(orm["product_seconds"]),
                f"ORM row by row ({'extrap. from ' + format(orm['sample'], ',') if orm['extrapolated'] else 'measured'})",
                _fmt(orm["seconds"]), _ratio_text(orm["ratio"]))
            c = r["checks"]
            add("", "", "  checks: running / list entries / accounts",
                f"{c['running_applications']:,} / {c['institution_list_entries']:,} / {c['platform_accounts']:,}",
                "", "", "", f"{n:,} each", "ok" if c["ok"] else "WRONG")
    m = f["2_reminders"]
    if not not_run("2 reminders", m):
        for db, r in m.items():
            if r.get("status") != "ok":
                add("2 reminders", db, "ERROR", str(r.get("error"))[:160])
                continue
            st, b, cpu = r["stages"], r["baseline"], r["cpu_us_per_message"]
            add("2 reminders", db, f"{r['reminders']:,} reminders due → delivered to aiosmtpd on "
                f"{r.get('receiver_loop') or '?'} ({r['smtp_connections']} connections)", _fmt(r["messages_per_second"], "msg/s"), "", "", "",
                f"≥ {r['target_messages_per_second']:,.0f} msg/s", r["verdict"])
            add("", "", "  end to end / reminders → outbox / outbox → delivered",
                f"{_fmt(r['seconds'])} / {_fmt(st['reminders_to_outbox']['seconds'])} / "
                f"{_fmt(st['outbox_to_delivered']['seconds'])}")
            add("", "", "  sending stage vs 1 SMTP connection per message", _fmt(r["send_messages_per_second"], "msg/s"),
                f"connection per message ({b['sample']:,} sent)", _fmt(b["messages_per_second"], "msg/s"),
                _ratio_text(b["ratio"]))
            fl = r["smtp_floor"]
            add("", "", "  sending stage vs the SMTP leg alone (same run)", _fmt(r["send_messages_per_second"], "msg/s"),
                f"pre-built messages, no DB ({fl['messages']:,})", _fmt(fl["messages_per_second"], "msg/s"),
                "" if fl["share_reached"] is None else f"{fl['share_reached'] * 100:.0f} % of it")
            add("", "", "  CPU per message: sender / SMTP server", f"{cpu['sender']} µs / {cpu['smtp_server']} µs")
            d = r["checks"]["delivery"]
            add("", "", "  checks: received / unique Message-IDs / samples with right headers",
                f"{d['received']:,} / {d['unique_message_ids']:,} / {d['samples_with_right_headers']}"
                f" of {d['samples_parsed']}", "", "", "", f"{r['reminders']:,} exactly once",
                "ok" if r["checks"]["ok"] else "WRONG")
    p = f["3_publication"]
    if not not_run("3 publication", p):
        for db, r in p.items():
            if r.get("status") != "ok":
                add("3 publication", db, "ERROR", str(r.get("error"))[:160])
                continue
            for name in ("drugs", "institutions"):
                part = r[name]
                d = part["diff"]
                add("3 publication" if name == "drugs" else "", db,
                    f"{name} list v{part['version']}: {part['entries']:,} entries (+{d['added']} −{d['removed']} "
                    f"~{d['changed']}), HTML+XLSX+CSV", _fmt(part["seconds"]), "", "", "",
                    f"≤ {r['target_seconds_each']:g} s", part["verdict"])
                add("", "", "  publish_list (entries, diff, version) / render_version",
                    f"{_fmt(part['publish_seconds'])} / {_fmt(part['render_seconds'])}")
                for key, base in part["baselines"].items():
                    add("", "", f"  vs {key.replace('_', ' ')}", _fmt(part["seconds"]),
                        base["what_short"], _fmt(base["seconds"]), _ratio_text(base["ratio"]))
            add("", db, "both lists", _fmt(r["seconds_both"]), "", "", "", "≤ 5 s (if one budget)",
                r["verdict_both"])
    w = f["4_web"]
    if not not_run("4 dashboard", w):
        for db, r in w.items():
            if r.get("status") != "ok":
                add("4 dashboard", db, "ERROR", str(r.get("error"))[:160])
                continue
            add("4 dashboard", db, f"overview + inbox at {r['institutions']:,}: worst p95 of "
                f"{len(r['targeted_pages'])} pages", _fmt(r["p95_ms_max"], "ms"), "", "", "",
                f"p95 ≤ {r['target_p95_ms']:g} ms", r["verdict"])
            bases = r["baseline"]["pages"]
            for key, page in r["pages"].items():
                base = bases.get(key) or {}
                add("", "", f"  {key} p50 / p95", f"{page['p50_ms']:g} / {page['p95_ms']:g} ms",
                    "first cut (p50)" if base else "", f"{base['p50_ms']:g} ms" if base else "",
                    _ratio_text(base.get("ratio_p50")))
    g = f["5_gate_round_trip"]
    if not not_run("5 gate round trip", g):
        for db, r in g.items():
            if r.get("status") != "ok":
                add("5 gate round trip", db, "ERROR", str(r.get("error"))[:160])
                continue
            b = r["baseline"]
            add("5 gate round trip", db, "decision → run leaves PAUSED (worst of "
                f"{sum(t.get('via', 'in-process') == 'in-process' for t in r['round_trips'])} in-process)", _fmt(r["seconds"]), f"pause poll {b['poll_seconds']} s",
                _fmt(b["seconds"]), _ratio_text(b["ratio"]), "≤ 2 s", r["verdict"])
            add("", "", "decision → flow code running again", _fmt(r["flow_running_seconds"]),
                f"pause poll {b['poll_seconds']} s", _fmt(b["flow_running_seconds"]),
                _ratio_text(b["ratio_flow_running"]), "≤ 2 s", r["verdict_flow_running"])
            cli = r.get("cli")
            if cli:
                add("", "", "`sanjin gate decide` in a new process: command start → run leaves PAUSED",
                    f"{_fmt(cli['seconds'])} (process {_fmt(cli['process_seconds'])})", "", "", "",
                    "(≤ 2 s)", _verdict(cli["seconds"], TARGETS["gate"]))
    o = f["6_prefect_overhead"]
    if not not_run("6 Prefect overhead", o):
        for db, r in o.items():
            if r.get("status") not in ("ok", "partial"):
                continue
            b = r["baseline"]
            add("6 Prefect overhead", db, f"share of (1): {_fmt(r['prefect_overhead_seconds'])} of "
                f"{_fmt(r['total_seconds'])}", _fmt(r["share"], "%"), "task run per institution",
                _fmt(b["share"], "%"), _ratio_text(b["ratio"]))
    for key, r in f["7_peak_rss"].items():
        base = r.get("baseline") or {}
        add("7 peak RSS" if key == next(iter(f["7_peak_rss"])) else "", "", key, _fmt(r.get("peak_rss_mb"), "MB"),
            base.get("what", "")[:40], _fmt(base.get("peak_rss_mb"), "MB"), _ratio_text(base.get("ratio")))
    c = f.get("8_compliance", {"status": "not run", "why": ""})
    if not not_run("8 compliance", c):
        for db, r in c.items():
            if r.get("status") != "ok":
                add("8 compliance", db, "ERROR", str(r.get("error"))[:160])
                continue
            add("8 compliance", db, f"pass over {r['orders']:,} order lines, {r['price_institutions']:,} prices",
                _fmt(r["pass_seconds"]), "plain SQL, same joins", _fmt(r["plain_sql_seconds"]), f"{r['ratio']}×",
                f"≤ {r['target_ratio']:g}×", r["verdict"])
            add("", "", "  the pass again (nothing new)", _fmt(r["rerun_seconds"]), "first pass", _fmt(r["pass_seconds"]),
                _ratio_text(round(r["rerun_seconds"] / r["pass_seconds"], 2) if r["pass_seconds"] else None))
            add("", "", "  peak RSS", f"{r['peak_rss_mb']:.0f} MB", "", "", "", "≤ 1024 MB", r["rss_verdict"])
            add("", "", f"  import of {r['orders']:,} order lines (XLSX)", f"{r['import_rows_per_second']:,} rows/s",
                "calamine read alone", f"{r['calamine_rows_per_second']:,} rows/s")
    t = f.get("9_topology", {"status": "not run", "why": ""})
    if not not_run("9 topology", t):
        _topology_rows(t, add)
    return rows


def render_table(document: dict[str, Any]) -> str:
    header = ["figure", "db", "measure", "product", "baseline", "baseline value", "ratio", "target", "verdict"]
    rows = [header, *table_rows(document)]
    widths = [max(_width(r[i]) for r in rows) for i in range(len(header))]
    widths = [min(w, 70) for w in widths]
    lines = []
    for k, r in enumerate(rows):
        lines.append(" | ".join(_pad(c, widths[i]) for i, c in enumerate(r)).rstrip())
        if k == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _width(text: str) -> int:
    """Display width: CJK characters take two columns."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(width - _width(text), 0)

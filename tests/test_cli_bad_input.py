"""The installed `sanjin` command given the bad arguments and settings of issue #18: a message in Chinese and
English on stderr, exit code 1, no traceback, no secret or personal data echoed; offline by default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.offline import OFFLINE_ENVIRONMENT, apply_offline_defaults
from sanjin.terminal import SafeConsole, sanitize

SANJIN = Path(sys.executable).parent / "sanjin"
ROOT = Path(__file__).resolve().parent.parent


def sanjin(*args: str, env: dict[str, str] | None = None, home: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SANJIN_")}
    full = {**base, "SANJIN_HOME": str(home), "COLUMNS": "300", **(env or {})}
    return subprocess.run([str(SANJIN), *args], env=full, capture_output=True, text=True, timeout=120, check=False)


def refused(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "File \"" not in proc.stderr, proc.stderr
    assert "错误 / error:" in proc.stderr
    text = " ".join(proc.stderr.split())
    for needle in needles:
        assert needle in text, (needle, text)
    return text


@pytest.fixture
def upgraded(tmp_path: Path) -> Path:
    proc = sanjin("db", "upgrade", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path


def test_gate_decide_with_a_twenty_digit_id_is_a_bad_argument(upgraded: Path) -> None:
    refused(sanjin("gate", "decide", "99999999999999999999", "--as", "x", home=upgraded),
            "命令参数有误 / bad arguments", "2147483647")


def test_run_with_an_unknown_phase_names_the_phases(upgraded: Path) -> None:
    refused(sanjin("run", "shenyang-2025", "--phase", "nosuchphase", home=upgraded),
            "命令参数有误", "nosuchphase", "enrollment")


def test_a_smtp_port_that_is_not_a_number_names_the_setting(upgraded: Path) -> None:
    refused(sanjin("status", "x", env={"SANJIN_SMTP_PORT": "notanumber"}, home=upgraded),
            "配置有误 / invalid setting", "SANJIN_SMTP_PORT")


def test_an_unreachable_postgresql_is_a_message_without_its_password(tmp_path: Path) -> None:
    url = "postgresql+psycopg://sanjin:s3cret-pw@127.0.0.1:9/sanjin"
    text = refused(sanjin("status", "x", env={"SANJIN_DATABASE_URL": url}, home=tmp_path), "无法连接数据库")
    assert "s3cret-pw" not in text


@pytest.mark.parametrize("command", [["serve"], ["web"], ["status", "shenyang-2025"]])
def test_a_database_never_upgraded_asks_for_db_upgrade(tmp_path: Path, command: list[str]) -> None:
    refused(sanjin(*command, home=tmp_path), "sanjin db upgrade")


def test_a_short_web_secret_key_is_refused_and_never_echoed(upgraded: Path) -> None:
    text = refused(sanjin("web", env={"SANJIN_WEB_SECRET_KEY": "tooshort-XYZ"}, home=upgraded),
                   "SANJIN_WEB_SECRET_KEY", "至少 16 个字符")
    assert "tooshort-XYZ" not in text


def test_control_characters_from_data_are_shown_not_obeyed(upgraded: Path) -> None:
    """A sentence of a holiday notice the parser names back, with a screen-clearing ESC and a right-to-left override."""
    notice = upgraded / "notice.txt"
    notice.write_text("国务院办公厅关于2027年部分节假日安排的通知\n一、元旦：\x1b[2J\x1b]0;pwned\x07\u202e乱写一通。\n",
                      encoding="utf-8")
    proc = sanjin("calendar", "import", str(notice), "--as", "x", home=upgraded)
    text = refused(proc)
    assert "\x1b" not in proc.stderr and "\u202e" not in proc.stderr and "\x07" not in proc.stderr
    assert "\\u001b[2J" in text and "\\u202e乱写一通" in text


def test_sanitize_keeps_chinese_tabs_and_newlines_and_escapes_the_rest() -> None:
    assert sanitize("和平区\t诊所\n") == "和平区\t诊所\n"
    assert sanitize("a\x00b\x9bc\u200bd\ufeff") == "a\\u0000b\\u009bc\\u200bd\\ufeff"
    out = SafeConsole(record=True, width=80)
    out.print("名称\x1b[31m", highlight=False)
    assert "\x1b[31m" not in out.export_text()


def test_the_product_turns_prefect_telemetry_off_unless_told_otherwise() -> None:
    env: dict[str, str] = {"DO_NOT_TRACK": "0"}
    applied = apply_offline_defaults(env)
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and env["DO_NOT_TRACK"] == "0"
    assert applied == {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def test_the_sanjin_command_applies_the_offline_defaults_before_prefect_starts(tmp_path: Path) -> None:
    code = ("import os, sys; sys.argv = ['sanjin', '--help']\n"
            "from sanjin.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print({{k: os.environ.get(k) for k in {sorted(OFFLINE_ENVIRONMENT)!r}}})")
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENVIRONMENT}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          check=False, cwd=ROOT)
    assert proc.stdout.strip().splitlines()[-1] == str(dict(sorted(OFFLINE_ENVIRONMENT.items())))


def test_prefect_itself_reports_telemetry_off_in_a_sanjin_process_started_with_a_bare_environment() -> None:
    """Issue #18: the embedded Prefect server tried to send telemetry out of an offline intranet. Asked of Prefect's
    own switches (its server's analytics setting, its SDK's check), in a process as an operator starts it: none of
    the variables set, and no CI marker, since Prefect keeps quiet in CI by itself and would hide a regression."""
    from prefect._internal.analytics.ci_detection import CI_ENV_VARS

    code = ("import sys; sys.argv = ['sanjin', '--help']\n"
            "from sanjin.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "from prefect.settings import get_current_settings\n"
            "from prefect._internal.analytics.enabled import is_telemetry_enabled\n"
            "print(get_current_settings().server.analytics_enabled, is_telemetry_enabled())")
    env = {k: v for k, v in os.environ.items()
           if k not in OFFLINE_ENVIRONMENT and k not in CI_ENV_VARS and not k.startswith("PREFECT_")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          check=False, cwd=ROOT)
    assert proc.stdout.strip().splitlines()[-1] == "False False", (proc.stdout[-500:], proc.stderr[-2000:])


def test_a_temporary_prefect_server_that_starts_too_late_is_a_message_not_a_traceback() -> None:
    from sanjin.errors import environment_message

    message = environment_message(RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server."))
    assert message is not None and "流程没有开始" in message and "PREFECT_API_URL" in message
    assert environment_message(RuntimeError("something else")) is None  # other failures still show where they came from


def test_a_wait_for_another_run_is_logged_with_the_step_in_chinese() -> None:
    """`sanjin run` printed "等待另一个运行 0.5 秒后开始enrollment": a code inside the Chinese sentence."""
    from tasks.programs import LOCK_WHAT

    for what in ("enrollment", "reminders", "compliance pass", "enforcement pass", "platform reconciliation",
                 "reconcile the alliance", "reconcile the drug list"):
        assert what in LOCK_WHAT and LOCK_WHAT[what].isascii() is False
    import re
    from pathlib import Path
    called = set(re.findall(r'what="([^"]+)"', "".join(p.read_text(encoding="utf-8")
                                                       for p in (Path(__file__).parents[1] / "tasks").rglob("*.py"))))
    assert called <= set(LOCK_WHAT), f"lock_program callers without a Chinese label: {called - set(LOCK_WHAT)}"

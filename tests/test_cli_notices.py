"""`sanjin notices …` and `sanjin publish` against a real database (SQLite and PostgreSQL, via `database_url`).

The commands are mounted on a small app here exactly as `sanjin/cli.py` mounts them, so these tests
do not depend on when its owner adds the lines.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, select
from sqlmodel import Session, col
from typer.testing import CliRunner

from core.settings import get_settings
from models.audit import AuditEvent
from models.outbox import Notice
from models.states import NoticeStatus, Role
from sanjin.cli_notices import notices_app, publish_command
from tasks.outbox.enqueue import NoticeDraft, enqueue_notices
from tasks.programs import UnknownProgram
from tests.factories import clock_at, ensure_user, make_institution, make_program, make_running_application, shanghai
from tests.notifications.samples import SAMPLES

SLUG = "shenyang-2025"

app = typer.Typer(pretty_exceptions_enable=False)
app.add_typer(notices_app, name="notices")
app.command("publish")(publish_command)
runner = CliRunner()


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Invoke the commands against the test database, with the maildir mailer writing under tmp_path."""
    monkeypatch.setenv("SANJIN_MAILER", "maildir")
    monkeypatch.setenv("SANJIN_MAILDIR", str(tmp_path / "maildir"))
    monkeypatch.setenv("SANJIN_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()

    def invoke(*args: object):
        return runner.invoke(app, [str(a) for a in args])

    yield invoke
    get_settings.cache_clear()


def ok(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return str(result.stdout)


def enqueue(engine: Engine, *, with_email: bool = True, n: int = 1, program_id: int | None = None,
            recipient_id: int | None = None) -> int:
    ctx = {k: v for k, v in SAMPLES["application_receipt"].items() if k not in ("recipient_name", "today")}
    draft = NoticeDraft(key=f"application_receipt:{n}", kind="application_receipt", recipient_type="institution",
                        recipient_name=f"收件人{n}", email=f"inst{n}@example.cn" if with_email else None,
                        context=ctx, recipient_id=recipient_id, program_id=program_id)
    with Session(engine) as session, session.begin():
        enqueue_notices(session, [draft], clock_at(2025, 9, 12, 10).now())
    with Session(engine) as session:
        return int(session.execute(select(col(Notice.id)).where(col(Notice.idempotency_key) == draft.key)).scalar_one())


def status_of(engine: Engine, notice_id: int) -> NoticeStatus:
    with Session(engine) as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        return notice.status


def delivered(tmp_path: Path) -> list[str]:
    box = mailbox.Maildir(tmp_path / "maildir", create=False)
    return sorted(email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)["To"] for key in box.iterkeys())


def test_notices_list_filters_by_program_and_status_and_limits(cli, engine: Engine) -> None:
    program = make_program(engine, SLUG)
    first = enqueue(engine, n=1, program_id=program.id)
    second = enqueue(engine, n=2, with_email=False, program_id=program.id)
    third = enqueue(engine, n=3)  # no program
    out = ok(cli("notices", "list"))
    assert out.index(f"│ {third} ") < out.index(f"│ {second} ") < out.index(f"│ {first} ")  # newest first
    assert "共 3 条" in out
    out = ok(cli("notices", "list", "--status", "no_address"))
    assert "无邮箱" in out and "收件人2" in out and "收件人1" not in out and "共 1 条" in out
    out = ok(cli("notices", "list", "--program", SLUG))
    assert "收件人3" not in out and "共 2 条" in out
    assert "共 1 条" in ok(cli("notices", "list", "--limit", "1"))
    assert cli("notices", "list", "--status", "lost").exit_code == 2
    assert isinstance(cli("notices", "list", "--program", "nowhere-2025").exception, UnknownProgram)


def test_notices_send_delivers_due_notices_to_the_maildir(cli, engine: Engine, tmp_path: Path) -> None:
    sent = [enqueue(engine, n=1), enqueue(engine, n=2)]
    kept = enqueue(engine, n=3, with_email=False)
    out = ok(cli("notices", "send"))
    assert "已发送 sent 2, 待重试 retried 0, 失败 dead 0" in out
    assert delivered(tmp_path) == ["收件人1 <inst1@example.cn>", "收件人2 <inst2@example.cn>"]
    assert [status_of(engine, i) for i in [*sent, kept]] == [NoticeStatus.SENT, NoticeStatus.SENT,
                                                              NoticeStatus.NO_ADDRESS]
    assert "已发送 sent 0" in ok(cli("notices", "send"))  # nothing due: nothing sent twice


def test_notices_retry_needs_an_address_for_a_no_address_notice(cli, engine: Engine, tmp_path: Path) -> None:
    ensure_user(engine, "manager1", Role.PROGRAM_MANAGER)
    nid = enqueue(engine, n=7, with_email=False)
    refused = cli("notices", "retry", nid)
    assert refused.exit_code == 1 and "still no address" in refused.stdout
    assert cli("notices", "retry", nid, "--email", f"{nid}:clinic@example.cn").exit_code == 2
    out = ok(cli("notices", "retry", nid, "--email", f"{nid}=clinic@example.cn", "--as", "manager1"))
    assert "requeued: 1 / 1" in out
    assert status_of(engine, nid) == NoticeStatus.PENDING
    ok(cli("notices", "send"))
    assert delivered(tmp_path) == ["收件人7 <clinic@example.cn>"]
    with Session(engine) as session:
        audit = session.execute(select(AuditEvent).where(col(AuditEvent.entity) == "notice")).scalars().all()
    assert [(a.action, a.actor, a.role) for a in audit] == [("resend", "manager1", Role.PROGRAM_MANAGER)]
    again = cli("notices", "retry", nid, 999999)
    assert again.exit_code == 1 and "is sent: nothing to resend" in again.stdout and "no such notice" in again.stdout


def test_notices_no_address_lists_who_to_phone(cli, engine: Engine) -> None:
    program = make_program(engine, SLUG)
    inst = make_institution(engine, name="南湖社区卫生服务中心", email=None)
    nid = enqueue(engine, n=4, with_email=False, program_id=program.id, recipient_id=inst.id)
    enqueue(engine, n=5)
    out = ok(cli("notices", "no-address", "--program", SLUG))
    assert f"│ {nid} " in out and "收件人4" in out and inst.phone in out and "收件人5" not in out
    assert "共 1 条" in out


def test_publish_writes_the_lists_files_and_index(cli, engine: Engine, tmp_path: Path) -> None:
    program = make_program(engine, SLUG)
    make_running_application(engine, program, make_institution(engine, name="南湖社区卫生服务中心"),
                             running_at=shanghai(2025, 9, 30, 9))
    out = ok(cli("publish", SLUG, "--out", tmp_path / "site"))
    assert "药品清单: 暂无内容 / nothing to publish" in out
    assert "定点机构名单: 已发布新版本 / published，当前第1版 / v1；生成文件 / rendered v1" in out
    assert (tmp_path / "site" / SLUG / "index.html").exists()
    again = ok(cli("publish", SLUG, "--list", "institutions", "--out", tmp_path / "site"))
    assert again.splitlines()[0] == "定点机构名单: 无变化 / unchanged，当前第1版 / v1"
    ok(cli("publish", SLUG, "--list", "institutions"))  # default folder: SANJIN_HOME/out
    assert (tmp_path / "home" / "out" / SLUG / f"{SLUG}-institutions-v1.xlsx").exists()
    assert cli("publish", SLUG, "--list", "recommended").exit_code == 2
    assert isinstance(cli("publish", "nowhere-2025").exception, UnknownProgram)


def test_notices_print_writes_the_letters_without_e_mail_once_and_names_them_in_chinese(cli, engine: Engine,
                                                                                         tmp_path: Path) -> None:
    from tasks.phases.alliance import reconcile_alliance

    make_program(engine, SLUG)
    reconcile_alliance(engine, SLUG, clock=clock_at(2025, 8, 7, 9))  # 13 cities without e-mail
    ensure_user(engine, "manager", Role.PROGRAM_MANAGER, display_name="王科长", unit="沈阳市医疗保障局")
    listed = cli("notices", "no-address", "--program", SLUG)
    assert "联盟邀请函" in listed.stdout and "alliance_invitation" not in listed.stdout
    out = tmp_path / "letters.html"
    first = cli("notices", "print", SLUG, "--as", "manager", "--out", str(out))
    assert first.exit_code == 0, first.output
    assert "已生成 13 封待打印通知" in first.stdout
    assert out.read_text(encoding="utf-8").count('<section class="letter">') == 13
    again = cli("notices", "print", SLUG, "--as", "manager", "--out", str(out))
    assert again.exit_code == 0 and "没有待打印的通知" in again.stdout
    assert "（已打印）" in cli("notices", "no-address", "--program", SLUG).stdout
    unknown = cli("notices", "print", SLUG, "--as", "nobody")
    assert unknown.exit_code != 0 and "没有用户 nobody" in str(unknown.exception)

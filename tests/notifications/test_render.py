import base64
import email
import email.policy
import hashlib
import logging
import re
from datetime import date, datetime
from decimal import Decimal
from importlib import resources

import pytest
from jinja2 import UndefinedError, meta

from notifications.render import (
    COMMON_KEYS,
    CONTEXT_KEYS,
    KINDS,
    LETTERHEAD_KEYS,
    Attachment,
    RenderedNotice,
    build_message,
    cn_date,
    environment,
    message_id_for,
    pack_html,
    render_notice,
    sender_domain,
    seven_bit,
    yuan,
)
from tests.notifications.samples import PROGRAM, SAMPLES, sample

TEMPLATE_DIR = resources.files("notifications") / "templates"
SENDER = "沈阳市医疗保障局 <sanjin@ybj.shenyang.example.gov.cn>"


def test_every_kind_has_a_sample_a_key_list_and_exactly_three_templates():
    assert set(SAMPLES) == set(KINDS) == set(CONTEXT_KEYS)
    names = {p.name for p in TEMPLATE_DIR.iterdir()}
    # Other pages (e.g. published lists) may live here too; a subject template marks a notice kind.
    assert {n.removesuffix(".subject.txt") for n in names if n.endswith(".subject.txt")} == set(KINDS)
    assert all({f"{k}.txt", f"{k}.html"} <= names for k in KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_template_renders_realistic_chinese_data_under_strict_undefined(kind):
    rendered = render_notice(kind, sample(kind), strict=True)
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert "{{" not in rendered.text + rendered.html + rendered.subject
    ctx = sample(kind)
    # The greeting or the footer names the recipient, in both bodies.
    assert ctx["recipient_name"] in rendered.text
    assert PROGRAM in rendered.text and PROGRAM in rendered.html
    assert cn_date(ctx["today"]) in rendered.text


@pytest.mark.parametrize(
    ("kind", "key"), [(k, key) for k in KINDS for key in sorted(CONTEXT_KEYS[k] | COMMON_KEYS)]
)
def test_a_missing_context_key_fails_in_strict_mode(kind, key):
    ctx = sample(kind)
    del ctx[key]
    with pytest.raises(UndefinedError, match=key):
        render_notice(kind, ctx, strict=True)


@pytest.mark.parametrize("kind", ["declaration_decision", "escalation"])
def test_a_missing_key_inside_an_item_fails_in_strict_mode(kind):
    ctx = sample(kind)
    ctx["items"] = [{k: v for k, v in item.items() if k != "name"} for item in ctx["items"]]
    with pytest.raises(UndefinedError):
        render_notice(kind, ctx, strict=True)


@pytest.mark.parametrize("kind", KINDS)
def test_templates_use_only_the_keys_declared_for_their_kind_and_use_all_of_them(kind):
    env = environment(strict=True)
    used: set[str] = set()
    for suffix in (".subject.txt", ".txt", ".html"):
        name = f"{kind}{suffix}"
        source = env.loader.get_source(env, name)[0]
        used |= meta.find_undeclared_variables(env.parse(source))
    declared = CONTEXT_KEYS[kind] | COMMON_KEYS | set(LETTERHEAD_KEYS)
    assert used - {"LABELS", "m"} <= declared  # m: the macros module each child imports
    # program_name / recipient_name / today may come only from the shared layout and footer.
    assert CONTEXT_KEYS[kind] <= used


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown notice kind"):
        render_notice("alliance_invite", {}, strict=True)


def test_lenient_mode_renders_a_missing_key_empty_and_logs_it(caplog):
    ctx = sample("gate_waiting")
    del ctx["gate_title"]
    with caplog.at_level(logging.WARNING, logger="notifications.render"):
        rendered = render_notice("gate_waiting", ctx)
    assert rendered.subject.endswith("｜沈阳市集采药品“三进”工作（2025）｜")  # the title left empty
    assert any("gate_title" in r.getMessage() for r in caplog.records)


def test_html_escapes_markup_in_an_institution_name_but_text_keeps_it_verbatim():
    ctx = sample("application_receipt")
    ctx["institution_name"] = '<script>alert("x")</script>沈阳市和平区诊所'
    rendered = render_notice("application_receipt", ctx, strict=True)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;沈阳市和平区诊所" in rendered.html
    assert '<script>alert("x")</script>沈阳市和平区诊所' in rendered.text
    assert '<script>alert("x")</script>' in rendered.subject  # a header, not HTML


def test_escaping_also_covers_values_passed_through_macros_and_item_lists():
    ctx = sample("declaration_decision")
    ctx["items"][0]["name"] = "<b>氨氯地平</b>"
    ctx["reason"] = "价格 > 中选价 & 未说明"
    html = render_notice("declaration_decision", ctx, strict=True).html
    assert "&lt;b&gt;氨氯地平&lt;/b&gt;" in html
    assert "价格 &gt; 中选价 &amp; 未说明" in html


@pytest.mark.parametrize("kind", KINDS)
def test_html_is_self_contained_with_inline_css_only(kind):
    html = render_notice(kind, sample(kind), strict=True).html.lower()
    assert "<link" not in html and "<style" not in html and "<script" not in html
    assert "src=" not in html and "url(" not in html and "@import" not in html
    assert 'style="' in html


def test_the_alliance_letter_follows_the_seed_title_and_letter_form():
    r = render_notice("alliance_invitation", sample("alliance_invitation"), strict=True)
    # Seed 000 五(一)1: 《沈阳市医疗保障局关于邀请组建“三进”集采药品清单联盟的函》 — the letter's title;
    # the subject puts the point first (issue #19)
    assert r.subject.startswith("邀请加入“三进”集采药品清单联盟｜")
    assert r.text.startswith("沈阳市医疗保障局关于邀请组建“三进”集采药品清单联盟的函")
    assert r.text.index("大连市医疗保障局：") < r.text.index("特此函达。")
    assert "请贵局于2025年8月15日前" in r.text
    assert "沈阳市医疗保障局\n2025年8月7日" in r.text


@pytest.mark.parametrize(
    ("decision", "level", "can_reapply", "expected"),
    [
        ("approve", "district", False, "申请已报市医保局审核"),
        ("approve", "city", False, "申报一批、成熟一批、运行一批"),
        ("reject", "city", True, "可在完善材料后重新提交申请"),
        ("reject", "city", False, "不再受理重新提交"),
    ],
)
def test_application_decision_says_what_happens_next(decision, level, can_reapply, expected):
    ctx = {**sample("application_decision"), "decision": decision, "level": level,
           "can_reapply": can_reapply, "reason": None}
    r = render_notice("application_decision", ctx, strict=True)
    assert expected in r.text and expected in r.html
    assert "说明：" not in r.text


@pytest.mark.parametrize(
    ("action", "label"),
    [("interview", "约谈"), ("rectification", "限期整改"), ("suspension", "暂停医保结算"),
     ("disqualification", "取消集采药品“三进”资格"), ("sign_removal", "摘除“三进”标识牌")],
)
def test_enforcement_notice_names_the_action(action, label):
    r = render_notice("enforcement_notice", {**sample("enforcement_notice"), "action": action}, strict=True)
    assert r.subject.startswith(f"{label}措施通知｜")
    assert r.subject.endswith(f"关于对沈阳市于洪区益康诊所采取{label}措施的通知")


def test_a_sign_removal_notice_says_the_institution_keeps_its_obligations_not_that_it_lost_its_qualification():
    r = render_notice("enforcement_notice", {**sample("enforcement_notice"), "action": "sign_removal"}, strict=True)
    for body in (r.text, r.html):
        assert "不再在“三进”医药机构名单中公示" in body and "购销协议和结算义务照常履行" in body
        assert "不再具备集采药品“三进”资格" not in body


def test_optional_values_may_be_none():
    ctx = {**sample("batch_published"), "list_url": None}
    r = render_notice("batch_published", ctx, strict=True)
    assert "名单查看" not in r.text and "None" not in r.text + r.html


@pytest.mark.parametrize(
    ("value", "expected"),
    [(Decimal("1234.5"), "¥1,234.50"), ("1234.50", "¥1,234.50"), ("0", "¥0.00"), (1234567, "¥1,234,567.00"),
     ("-20.005", "-¥20.01"), (0.1 + 0.2, "¥0.30"), ("1,000.00", "¥1,000.00"), ("NaN", "NaN"), ("待定", "待定")],
)
def test_amounts_are_shown_in_yuan_with_thousands_separators(value, expected):
    assert yuan(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(date(2025, 10, 1), "2025年10月1日"), ("2025-10-01", "2025年10月1日"),
     (datetime.fromisoformat("2025-09-30T17:00:00+00:00"), "2025年10月1日"),  # Shanghai day, not UTC's
     ("2025-12-31T23:00:00+08:00", "2025年12月31日"), ("即日起", "即日起"), (None, "")],
)
def test_dates_are_shown_the_way_official_letters_write_them(value, expected):
    assert cn_date(value) == expected


def test_message_id_is_stable_per_notice_and_distinct_between_notices():
    a = message_id_for(7, "application_receipt:app:42", "ybj.example.gov.cn")
    assert a == message_id_for(7, "application_receipt:app:42", "ybj.example.gov.cn")
    assert a.startswith("<sanjin.") and a.endswith(".7@ybj.example.gov.cn>")
    assert a != message_id_for(8, "application_receipt:app:43", "ybj.example.gov.cn")
    assert sender_domain(SENDER) == "ybj.shenyang.example.gov.cn"


def test_build_message_is_multipart_alternative_with_an_encoded_chinese_subject():
    rendered = render_notice("payment_due", sample("payment_due"), strict=True)
    mid = message_id_for(5, "payment_due:inst:9:2025-10", "ybj.shenyang.example.gov.cn")
    raw = build_message({"email": "caiwu@yikang-clinic.example.cn", "recipient_name": "周杰"}, rendered, SENDER,
                        mid, when=datetime(2025, 10, 9, 9, 30))
    head = raw.split(b"\n\n", 1)[0]
    head.decode("ascii")  # every header is 7-bit: RFC 2047 words, no raw UTF-8
    assert b"=?utf-8?" in head
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Subject"] == rendered.subject
    assert msg["To"].addresses[0].display_name == "周杰"
    assert msg["To"].addresses[0].addr_spec == "caiwu@yikang-clinic.example.cn"
    assert msg["From"].addresses[0].display_name == "沈阳市医疗保障局"
    assert msg["Message-ID"] == mid
    assert msg["Date"].datetime == datetime.fromisoformat("2025-10-09T09:30:00+08:00")
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_body(("plain",)).get_content() == rendered.text
    assert msg.get_body(("html",)).get_content() == pack_html(rendered.html)
    assert [p["Content-Transfer-Encoding"] for p in msg.iter_parts()] == ["8bit", "8bit"]


@pytest.mark.parametrize("filename", ["ningxia-2025-2026Q1-quarterly-v2.xlsx", "宁夏2026年第1季度统计表.xlsx"])
def test_an_attachment_makes_a_mixed_message_whose_file_reads_back_byte_for_byte(filename):
    rendered = render_notice("quarterly_report", sample("quarterly_report"), strict=True)
    workbook = bytes(range(256)) * 40  # binary, with every byte value
    raw = build_message({"email": "jc@nx.example.gov.cn", "recipient_name": "价采处"}, rendered, SENDER,
                        message_id_for(7, "report:quarterly:1:2026Q1:v2:user3", "nx.example.gov.cn"),
                        when=datetime(2026, 4, 20, 9, 0), attachments=[Attachment(filename, "application/x-test", workbook)])
    raw.decode("ascii")  # all base64: fit for a server without 8BITMIME, and seven_bit leaves it alone
    assert seven_bit(raw) == raw
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/mixed"
    assert msg.get_body(("plain",)).get_content() == rendered.text
    assert msg.get_body(("html",)).get_content() == pack_html(rendered.html)
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == filename
    assert attachment.get_content_type() == "application/x-test"
    assert attachment.get_content() == workbook


def test_a_line_break_in_a_name_cannot_inject_a_header():
    rendered = render_notice("gate_waiting", sample("gate_waiting"), strict=True)
    raw = build_message({"email": "a@example.cn", "recipient_name": "刘洋\r\nBcc: evil@example.com"}, rendered,
                        SENDER, "<x@y>")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Bcc"] is None


def test_build_message_refuses_a_notice_without_an_address():
    rendered = render_notice("gate_waiting", sample("gate_waiting"), strict=True)
    with pytest.raises(ValueError, match="e-mail"):
        build_message({"email": None, "recipient_name": "刘洋"}, rendered, SENDER, "<x@y>")


def _legacy_message(recipient_name, email_address, rendered, sender, message_id, when):
    """What the `email` package writes for the same notice: the reference build_message must read the same."""
    from email.header import Header
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText
    from email.utils import format_datetime, formataddr, parseaddr

    msg = MIMEMultipart("alternative")
    msg["Subject"] = Header(rendered.subject, "utf-8")
    msg["From"] = formataddr(parseaddr(sender), charset="utf-8")
    msg["To"] = formataddr((recipient_name, email_address), charset="utf-8")
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.attach(MIMEText(rendered.text, "plain", "utf-8"))
    msg.attach(MIMEText(rendered.html, "html", "utf-8"))
    return msg.as_bytes()


LONG_NAME = "沈阳老百姓大药房连锁有限公司铁西区兴华北街第二十三分店（医保结算与集采药品配备联系人）"


@pytest.mark.parametrize("eight_bit", [True, False], ids=["8bit", "base64"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("recipient", ["周杰", LONG_NAME, "Zhang, Wei (财务)", "Li Na", ""])
def test_a_built_message_reads_as_the_email_package_would_write_it(kind, recipient, eight_bit):
    rendered = render_notice(kind, {**sample(kind), "institution_name": LONG_NAME} if "institution_name"
                             in sample(kind) else sample(kind), strict=True)
    when = datetime.fromisoformat("2025-10-09T09:30:00+08:00")
    mid = message_id_for(42, f"{kind}:42", "ybj.shenyang.example.gov.cn")
    ours = email.message_from_bytes(build_message({"email": "a.b-c@yl.example.cn", "recipient_name": recipient},
                                                  rendered, SENDER, mid, when=when, eight_bit=eight_bit),
                                    policy=email.policy.default)
    theirs = email.message_from_bytes(_legacy_message(recipient, "a.b-c@yl.example.cn", rendered, SENDER, mid, when),
                                      policy=email.policy.default)
    assert not ours.defects and not any(p.defects for p in ours.iter_parts())
    for header in ("Subject", "From", "To", "Date", "Message-ID", "Auto-Submitted", "MIME-Version"):
        assert str(ours[header]) == str(theirs[header]), header
    assert ours["To"].addresses == theirs["To"].addresses
    assert ours.get_content_type() == theirs.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in ours.iter_parts()] == [p.get_content_type() for p in theirs.iter_parts()]
    for part in ("plain", "html"):
        assert ours.get_body((part,)).get_content_charset() == "utf-8"
    assert ours.get_body(("plain",)).get_content() == theirs.get_body(("plain",)).get_content()
    # The HTML differs only where HTML cannot tell: line breaks and indentation became single spaces.
    our_html, their_html = ours.get_body(("html",)).get_content(), theirs.get_body(("html",)).get_content()
    assert our_html.split() == their_html.split()
    assert our_html == pack_html(their_html)
    assert our_html.count("\n") < their_html.count("\n")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_goes_as_8bit_in_a_few_lines_that_fit_smtp(kind):
    rendered = render_notice(kind, {**sample(kind), "institution_name": LONG_NAME} if "institution_name"
                             in sample(kind) else sample(kind), strict=True)
    raw = build_message({"email": "a@example.cn", "recipient_name": LONG_NAME}, rendered, SENDER, "<x@y>")
    assert raw.count(b"Content-Transfer-Encoding: 8bit\n") == 2
    assert max(len(line) for line in raw.split(b"\n")) <= 998  # RFC 5322 §2.1.1
    packed = pack_html(rendered.html).encode()
    assert packed in raw
    # Greedy packing: any two neighbouring lines hold more than 900 octets between them.
    assert packed.count(b"\n") <= 1 + 2 * len(packed) // 900 < rendered.html.count("\n") // 3
    assert raw.split(b"\n\n", 1)[0].isascii()  # headers stay 7-bit


@pytest.mark.parametrize("kind", KINDS)
def test_for_a_7bit_server_a_message_becomes_exactly_what_base64_mode_writes(kind):
    rendered = render_notice(kind, sample(kind), strict=True)
    when = datetime(2025, 10, 9, 9, 30)
    mid = message_id_for(7, f"{kind}:7", "ybj.shenyang.example.gov.cn")
    eight = build_message({"email": "a@example.cn", "recipient_name": "周杰"}, rendered, SENDER, mid, when=when)
    base = build_message({"email": "a@example.cn", "recipient_name": "周杰"}, rendered, SENDER, mid, when=when,
                         eight_bit=False)
    assert eight != base and not eight.isascii()
    assert seven_bit(eight) == base
    assert base.isascii() and max(len(line) for line in base.split(b"\n")) <= 76
    assert seven_bit(base) == base  # nothing left to convert


def test_seven_bit_leaves_data_it_did_not_build_alone():
    data = "Subject: x\nContent-Transfer-Encoding: 8bit\n\n正文\n".encode()
    assert seven_bit(data) == data


def _parts(raw: bytes) -> list[tuple[str, str]]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return [(p["Content-Transfer-Encoding"], p.get_content()) for p in msg.iter_parts()]


@pytest.mark.parametrize("text", [
    "第一行\n" + "长" * 340 + "\n",  # 1,020 octets on one line: over SMTP's 998
    "带回车\r符号的一行\n",  # a bare CR has no place in 8-bit data (RFC 2045 §2.8)
    "带空\x00字符\n",
])
def test_a_part_that_cannot_go_as_8bit_goes_as_base64_and_the_other_stays_8bit(text):
    rendered = RenderedNotice("主题", text, "<p>正文</p>\n")
    raw = build_message({"email": "a@example.cn", "recipient_name": ""}, rendered, SENDER, "<x@y>")
    assert _parts(raw) == [("base64", text), ("8bit", "<p>正文</p>\n")]
    assert max(len(line) for line in raw.split(b"\n")) <= 998


def test_a_part_holding_the_boundary_line_goes_as_base64_so_it_cannot_end_the_part_early():
    mid = "<x@y>"
    token = hashlib.sha1(mid.encode(), usedforsecurity=False).hexdigest()[:20]
    text = f"前文\n------=_sanjin_{token}\n后文\n"
    raw = build_message({"email": "a@example.cn", "recipient_name": ""}, RenderedNotice("主题", text, "<p>正文</p>"),
                        SENDER, mid)
    assert _parts(raw) == [("base64", text), ("8bit", "<p>正文</p>")]
    assert raw.count(f"------=_sanjin_{token}".encode()) == 3  # two delimiters and the closing one


def test_packing_joins_lines_with_one_space_but_keeps_pre_and_textarea_as_they_are():
    html = ("<div>\n  <p>一</p>\n\n  <p>二</p>\n<PRE>代码\n  缩进\n</PRE>\n<p>三</p>\n"
            "<textarea>第一行\n第二行</textarea>\n</div>\n")
    assert pack_html(html) == ("<div> <p>一</p> <p>二</p>\n<PRE>代码\n  缩进\n</PRE>\n<p>三</p>\n"
                               "<textarea>第一行\n第二行</textarea>\n</div>\n")


def test_packing_cuts_lines_at_about_900_octets_and_only_where_a_line_break_was():
    lines = [f"<p>第{i}段：{'内容' * 30}</p>" for i in range(40)]
    packed = pack_html("\n".join(lines) + "\n").encode()
    out = packed.split(b"\n")
    assert out[-1] == b"" and all(0 < len(line) <= 900 for line in out[:-1])
    assert len(out) - 1 < len(lines) // 3
    assert b" ".join(out[:-1]).decode().split(" ") == lines  # every cut is at one of the old line breaks


def test_a_long_chinese_subject_is_folded_into_encoded_words_that_never_split_a_character():
    rendered = render_notice("account_reminder", {**sample("account_reminder"), "institution_name": LONG_NAME},
                             strict=True)
    raw = build_message({"email": "a@example.cn", "recipient_name": LONG_NAME}, rendered, SENDER, "<x@y>")
    head = raw.split(b"\n\n", 1)[0].decode("ascii")  # 7-bit headers
    subject = head[head.index("Subject:"):head.index("\nFrom:")]
    lines = subject.split("\n")
    assert len(lines) > 2 and all(len(line) <= 76 for line in lines)  # RFC 2047 §2
    words = re.findall(r"=\?utf-8\?b\?([^?]+)\?=", subject)
    assert all(len(f"=?utf-8?b?{w}?=") <= 75 for w in words)
    assert "".join(base64.b64decode(w).decode("utf-8") for w in words) == rendered.subject  # each word whole
    assert max(len(line) for line in raw.split(b"\n")) <= 998


@pytest.mark.parametrize("address", ["张伟@卫生院.example.cn", "a@example.cn\r\nBcc: evil@example.com"])
def test_an_address_that_cannot_go_in_a_header_is_refused(address):
    rendered = render_notice("gate_waiting", sample("gate_waiting"), strict=True)
    with pytest.raises(ValueError):
        build_message({"email": address, "recipient_name": "刘洋"}, rendered, SENDER, "<x@y>")


LETTERHEAD = {"issuer_office": "沈阳市医疗保障局", "document_number": "沈医保函〔2025〕1042号",
              "contact_name": "价格招采处 王科长", "contact_phone": "024-22856712"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_subject_says_its_point_within_20_characters_before_the_program_name(kind):
    """A phone's preview shows the first ~20 characters: the point comes first, the program after it (issue #19)."""
    subject = render_notice(kind, {**sample(kind), "due_provisional": True}, strict=True).subject
    assert PROGRAM in subject
    assert len(subject.split(PROGRAM)[0].rstrip("｜")) <= 20, subject


@pytest.mark.parametrize("kind", KINDS)
def test_every_letter_carries_the_issuing_office_contact_person_and_phone(kind):
    r = render_notice(kind, {**sample(kind), **LETTERHEAD}, strict=True)
    for body in (r.text, r.html):
        assert "价格招采处 王科长" in body and "024-22856712" in body and "沈阳市医疗保障局" in body
        assert "沈医保函〔2025〕1042号" in body or kind != "alliance_invitation"
        # nothing asks to answer through the system above a footer that says the system takes no replies
        assert "通过本系统回复" not in body and "请勿直接回复" not in body
        assert "系统不接收回复邮件" in body


def test_the_alliance_letter_carries_its_document_number_and_asks_for_a_reply_by_letter():
    r = render_notice("alliance_invitation", {**sample("alliance_invitation"), **LETTERHEAD}, strict=True)
    lines = r.text.splitlines()
    assert lines[0].endswith("联盟的函") and lines[1] == "沈医保函〔2025〕1042号"
    assert "前函复我局是否同意加入联盟（联系人：价格招采处 王科长，联系电话：024-22856712）" in r.text
    assert r.html.index("沈医保函〔2025〕1042号") < r.html.index("大连市医疗保障局：")


def test_a_letter_without_a_letterhead_points_to_the_local_bureau():
    r = render_notice("application_decision", sample("application_decision"), strict=True)
    assert "联系人：" not in r.text and "请联系所在地医疗保障部门" in r.text

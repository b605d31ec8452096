"""Notice data → subject, text and HTML, then → RFC 5322 bytes; pure, so it can be tested without SMTP.

Rendering lives apart from sending (STYLE.md, "Side effects"): the outbox stores the data to render,
this module turns it into a message value, and `notifications.smtp` delivers the bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from jinja2 import (
    Environment,
    PackageLoader,
    StrictUndefined,
    Template,
    Undefined,
    UndefinedError,
    select_autoescape,
)
from jinja2.runtime import make_logging_undefined

from models.clock import SHANGHAI, to_shanghai
from models.labels import DECISION_LABELS, ENFORCEMENT_KIND_LABELS, REVIEW_LEVEL_LABELS
from models.outbox import Notice
from models.reasons import readable_instants

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = (
    "alliance_invitation",
    "declaration_receipt",
    "declaration_decision",
    "application_receipt",
    "application_decision",
    "batch_published",
    "account_reminder",
    "contract_reminder",
    "payment_due",
    "payment_overdue",
    "quarterly_report_reminder",
    "quarterly_report",
    "summary_report",
    "enforcement_notice",
    "escalation",
    "gate_waiting",
    "gate_overdue",
    "calendar_unpublished",
    "audit_chain_broken",
)

COMMON_KEYS: frozenset[str] = frozenset({"program_name", "recipient_name", "today"})
# Who the letter comes from, from the program file's `issuer` (tasks.outbox.send_notices.render_context):
# the 落款, the 文号 and the contact every letter ends with. Empty when a program gives none.
# `printed`: the letter goes on paper (sanjin notices print), so its footer speaks of a letter, not an e-mail.
LETTERHEAD_KEYS: tuple[str, ...] = ("issuer_office", "document_number", "contact_name", "contact_phone", "printed")

# What each kind's producer must put in the context, besides COMMON_KEYS: the contract between the
# code that enqueues a notice and the templates (a test keeps the two in step). COMMON_KEYS, and the
# `institution_name` of a letter to an institution (its recipient_name), come from the notice's row
# when the context lacks them (tasks.outbox.send_notices.render_context): bulk writers store neither.
CONTEXT_KEYS: dict[str, frozenset[str]] = {
    kind: frozenset(keys)
    for kind, keys in {
        "alliance_invitation": ("city", "bureau", "lead_city", "response_due", "response_due_provisional"),
        "declaration_receipt": ("enterprise_name", "declaration_id", "product_count", "submitted_on"),
        "declaration_decision": ("enterprise_name", "declaration_id", "decision", "reason", "items"),
        "application_receipt": ("institution_name", "application_id", "district", "submitted_on"),
        "application_decision": (
            "institution_name", "application_id", "decision", "level", "reason", "can_reapply",
            "district",  # the district review names its bureau (和平区医疗保障局), not a generic 区（县）医保局
        ),
        "batch_published": ("batch_number", "institution_name", "published_on", "list_url"),
        "account_reminder": ("institution_name", "due_on", "due_provisional", "working_days_left"),
        "contract_reminder": ("institution_name", "enterprise_names", "due_on", "due_provisional",
                              "working_days_left"),
        "payment_due": ("institution_name", "amount", "due_on", "due_provisional", "order_count"),
        "payment_overdue": ("institution_name", "amount", "due_on", "due_provisional", "months_overdue"),
        "quarterly_report_reminder": ("year", "quarter", "due_on"),
        "quarterly_report": ("year", "quarter", "quarter_label", "version", "generated_on", "attachments"),
        "summary_report": ("year", "version", "generated_on", "attachments"),
        "enforcement_notice": ("subject_name", "action", "reason", "effective_on"),
        "escalation": ("reviewer_name", "district", "items"),
        "gate_waiting": ("reviewer_name", "gate_title", "item_count", "due_on", "due_provisional", "stage"),
        "gate_overdue": ("manager_name", "items"),
        "calendar_unpublished": ("manager_name", "year"),
        "audit_chain_broken": ("manager_name", "problem", "checked_on"),
    }.items()
}

# Code values → the words a letter uses; a global so subject, text and HTML say the same thing.
LABELS: dict[str, dict[str, str]] = {
    "decision": DECISION_LABELS,
    "level": REVIEW_LEVEL_LABELS,
    "enforcement": ENFORCEMENT_KIND_LABELS,
}

_CENT = Decimal("0.01")
_LINE_BREAKS = re.compile(r"[\r\n\t]+")


@dataclass(frozen=True)
class Attachment:
    """A file sent with a notice (an issued report's workbook); its bytes are read by the sender, not here."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class RenderedNotice:
    """What a notice says; the same value feeds e-mail, print-outs and previews."""

    subject: str
    text: str
    html: str


def cn_date(value: Any) -> Any:
    """2025年10月1日 — the form official letters use; accepts date, datetime or the ISO text JSON holds."""
    if isinstance(value, Undefined) or value is None:
        return value if isinstance(value, Undefined) else ""
    if isinstance(value, datetime):
        day = to_shanghai(value).date()
    elif isinstance(value, date):
        day = value
    else:
        text = str(value).strip()
        try:
            day = date.fromisoformat(text[:10])
        except ValueError:
            return text  # already prose ("即日起"); better shown as given than dropped
    return f"{day.year}年{day.month}月{day.day}日"


def month_day(value: Any) -> Any:
    """10月15日 — a date short enough for a subject line, whose first 20 characters a phone shows."""
    text = cn_date(value)
    return text.split("年", 1)[1] if isinstance(text, str) and "年" in text else text


def yuan(value: Any) -> Any:
    """¥1,234.50 — amounts arrive as Decimal, or as text from JSON; floats are taken by their repr."""
    if isinstance(value, Undefined) or value is None:
        return value if isinstance(value, Undefined) else ""
    try:
        amount = Decimal(str(value).replace(",", "").replace("¥", "").strip()).quantize(_CENT, ROUND_HALF_UP)
    except InvalidOperation:  # not a number: show what was given rather than fail the letter
        return str(value)
    if not amount.is_finite():
        return str(value)
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,.2f}"


class _NoticeEnvironment(Environment):
    """An environment whose templates see its globals as one flat dict instead of a ChainMap.

    Every render copies the template's globals into the new context (twice: the variables and the set
    of global names), and every `{% import %}` compares those names again; over a ChainMap each copy
    walks both maps key by key. A reminder's three renders took ~55 µs with the ChainMap, ~33 flat.
    What is given up: a change to the environment's globals after a template is loaded would not reach
    that template — and `_environment` sets every global before any template is loaded.
    """

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}


def _environment(strict: bool) -> Environment:
    undefined: type[Undefined] = StrictUndefined if strict else make_logging_undefined(log, Undefined)
    env = _NoticeEnvironment(
        # A package loader, not a file path, so templates are found inside an installed wheel too.
        loader=PackageLoader("notifications", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=undefined,
        # Templates ship inside the package and never change under a running process; checking their
        # mtimes on every render cost more than the rendering itself.
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cn_date"] = cn_date
    env.filters["yuan"] = yuan
    env.filters["md"] = month_day
    env.filters["instants"] = readable_instants  # evidence keeps ISO instants; a letter writes 2025-09-23 09:00
    env.globals["LABELS"] = LABELS
    return env


@lru_cache(maxsize=2)
def environment(strict: bool = False) -> Environment:
    """Built on first use (no I/O at import time) and kept, so compiled templates are cached."""
    return _environment(strict)


def render_notice(kind: str, context: Mapping[str, Any], *, strict: bool = False) -> RenderedNotice:
    """Render one kind; `strict` turns a missing key into an error (tests), else it renders empty and logs.

    Strict mode checks the declared keys up front as well as using StrictUndefined, because a key
    read only in one branch (`can_reapply` of a rejection) would slip past StrictUndefined on the
    other branch.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown notice kind {kind!r}")
    if strict:
        missing = (COMMON_KEYS | CONTEXT_KEYS[kind]) - context.keys()
        if missing:
            raise UndefinedError(f"{kind}: context is missing {', '.join(sorted(missing))}")
    subject, text, html = _templates(kind, strict)
    data = {**dict.fromkeys(LETTERHEAD_KEYS, ""), **context}
    return RenderedNotice(
        # One line: a template's trailing newline or a name with a line break must not split the header.
        subject=_one_line(subject.render(data)),
        text=text.render(data),
        html=html.render(data),
    )


@lru_cache(maxsize=2 * len(KINDS))
def _templates(kind: str, strict: bool) -> tuple[Template, Template, Template]:
    """A kind's three compiled templates, looked up once instead of three loader lookups per notice."""
    env = environment(strict)
    return (env.get_template(f"{kind}.subject.txt"), env.get_template(f"{kind}.txt"),
            env.get_template(f"{kind}.html"))


def message_id_for(notice_id: int, idempotency_key: str, domain: str) -> str:
    """The same notice always gets the same Message-ID, so a resend after a crash is recognisably a duplicate."""
    digest = hashlib.sha1(idempotency_key.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]
    return f"<sanjin.{digest}.{notice_id}@{domain}>"


def sender_domain(sender: str) -> str:
    """The domain of a From address, for Message-IDs; `localhost` when the address has none."""
    address = parseaddr(sender)[1] or sender
    return address.rpartition("@")[2] or "localhost"


def _one_line(value: str) -> str:
    return " ".join(_LINE_BREAKS.sub(" ", value).split())


# RFC 2047: an encoded word is at most 75 characters and a header line holding one at most 76. 39 UTF-8
# bytes make a 52-character base64 text, a 64-character word: "Subject: " plus one still fits a line.
_WORD_BYTES = 39


def _encoded_words(text: str) -> str:
    """`=?utf-8?b?…?=` words folded one per line, each cut on a character boundary (never mid-character)."""
    raw = text.encode("utf-8")
    words = []
    start, end = 0, len(raw)
    while start < end:
        cut = min(start + _WORD_BYTES, end)
        while cut < end and raw[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte: step back to the start
            cut -= 1
        words.append("=?utf-8?b?" + binascii.b2a_base64(raw[start:cut], newline=False).decode("ascii") + "?=")
        start = cut
    return "\n ".join(words)


def _subject_header(subject: str) -> str:
    line = _one_line(subject)
    if line.isascii():  # rare here; the email package folds plain text on its spaces
        return Header(line, "utf-8", header_name="Subject").encode()
    return _encoded_words(line)


def _address(name: str, address: str) -> str:
    """A To/From value: a Chinese display name as one encoded word, a plain one quoted when it needs it.

    One word however long the name, as `formataddr` writes it: split into several, the name comes
    back from Python's own address parser with a space at each split ("…服务 站").
    """
    name, address = _one_line(name), address.strip()
    if not name:
        return address
    if name.isascii():
        return formataddr((name, address))
    encoded = binascii.b2a_base64(name.encode("utf-8"), newline=False).decode("ascii")
    return f"=?utf-8?b?{encoded}?=\n <{address}>"


@lru_cache(maxsize=16)
def _from_header(sender: str) -> str:
    sender_name, sender_address = parseaddr(sender)
    return _address(sender_name, sender_address or sender)


@lru_cache(maxsize=16)
def _date_header(when: datetime) -> str:
    # A chunk's messages share one `when`: formatted once, not per message.
    return format_datetime(to_shanghai(when))


def build_message(
    notice: Notice | Mapping[str, Any],
    rendered: RenderedNotice,
    sender: str,
    message_id: str,
    *,
    when: datetime | None = None,
    eight_bit: bool = True,
    attachments: Sequence[Attachment] = (),
) -> bytes:
    """multipart/alternative bytes (text, then HTML; UTF-8) for SMTP or a maildir.

    Written out directly from a fixed layout rather than through the `email` package: the legacy
    `email.mime` classes took ~350 µs a message here (the modern `EmailMessage` API ~3× that), this
    ~30 µs — at 2,000 messages/s that is most of a core given back to rendering and SMTP. The layout is
    what `email.mime` writes (a test parses both and compares them header by header and part by part);
    headers stay 7-bit, the subject folded into RFC 2047 encoded words of at most 75 characters.

    Each part goes as raw UTF-8 (`8bit`, RFC 6152) when it can, else base64: the receiving server reads
    DATA line by line, and base64 cut at 76 characters made a reminder 78 lines where 8-bit with the HTML
    packed (`pack_html`) makes ~35 — aiosmtpd spent ~540 µs of CPU a message on the first, ~430 on the
    second. A server that does not offer 8BITMIME gets `seven_bit(data)`, which is byte for byte what
    `eight_bit=False` writes. The HTML is packed either way, so both forms carry the same content.

    With attachments the message is multipart/mixed: the alternative first, then each file as base64. Such a
    message is written all in base64 (rare, and a server without 8BITMIME takes it as it is).
    """
    if isinstance(notice, Notice):
        recipient_name, email = notice.recipient_name, notice.email
    else:
        recipient_name, email = str(notice.get("recipient_name") or ""), notice.get("email")
    if not email:
        raise ValueError("a notice without an e-mail address cannot become a message")
    address = str(email).strip()
    # As formataddr did: a mailbox outside ASCII (SMTPUTF8) or a control character cannot go in a header.
    if not address.isascii() or _CONTROL.search(address) or _CONTROL.search(message_id):
        raise ValueError(f"cannot write {address!r} / {message_id!r} into a header")
    # A fixed boundary needs no collision scan: base64 lines never contain "-", and an 8-bit part that
    # contains the delimiter goes as base64 instead (`_part`).
    token = hashlib.sha1(message_id.encode("utf-8"), usedforsecurity=False).hexdigest()[:20]
    boundary = f"----=_sanjin_{token}"
    delimiter = b"--" + boundary.encode("ascii")
    date = _date_header(when) if when else format_datetime(datetime.now(SHANGHAI))
    eight_bit = eight_bit and not attachments
    outer = f"----=_sanjin_mixed_{token}" if attachments else boundary
    kind = "mixed" if attachments else "alternative"
    head = (
        f'Content-Type: multipart/{kind};\n boundary="{outer}"\n'
        "MIME-Version: 1.0\n"
        f"Subject: {_subject_header(rendered.subject)}\n"
        f"From: {_from_header(sender)}\n"
        f"To: {_address(recipient_name, address)}\n"
        f"Date: {date}\n"
        f"Message-ID: {message_id}\n"
        # Tells vacation responders and mailing lists not to answer a machine.
        "Auto-Submitted: auto-generated\n"
        "\n"
    )
    if attachments:
        head += f'--{outer}\nContent-Type: multipart/alternative;\n boundary="{boundary}"\n\n'
    # Plain text first: RFC 2046 orders alternatives from least to most preferred.
    head += f"--{boundary}\n"
    body = [
        head.encode("ascii"),
        *_part("plain", rendered.text.encode("utf-8"), delimiter, eight_bit),
        b"\n", delimiter, b"\n",
        *_part("html", _pack_html(rendered.html.encode("utf-8")), delimiter, eight_bit),
        b"\n", delimiter, b"--\n",
    ]
    for attachment in attachments:
        body.append(f"\n--{outer}\n".encode("ascii") + _attachment_head(attachment))
        body.append(base64.encodebytes(attachment.data))
    if attachments:
        body.append(f"\n--{outer}--\n".encode("ascii"))
    return b"".join(body)


def _attachment_head(attachment: Attachment) -> bytes:
    """The part's headers; a name outside ASCII goes as RFC 2231 `filename*` (and an encoded `name`)."""
    name = _one_line(attachment.filename).replace('"', "").replace("\\", "")
    if name.isascii():
        named = f'; name="{name}"', f'; filename="{name}"'
    else:
        named = (f'; name="{_encoded_words(name)}"',
                 "; filename*=utf-8''" + quote(name, safe=""))
    content_type = _one_line(attachment.content_type) or "application/octet-stream"
    return (f"Content-Type: {content_type}{named[0]}\nContent-Transfer-Encoding: base64\n"
            f"Content-Disposition: attachment{named[1]}\n\n").encode("ascii")


# RFC 5322 §2.1.1: a line is at most 998 octets. HTML is packed to ~900, leaving room for dot-stuffing.
_MAX_LINE = 998
_PACK_TO = 900


def _part(subtype: str, content: bytes, delimiter: bytes, eight_bit: bool) -> tuple[bytes, bytes]:
    """A part's head and body: the UTF-8 as it is when 8-bit allows it, else base64."""
    if (eight_bit and max(map(len, content.split(b"\n"))) <= _MAX_LINE
            and b"\r" not in content and b"\0" not in content  # RFC 2045 §2.8: no bare CR, no NUL
            and delimiter not in content):
        # The line break before the next delimiter belongs to the delimiter (RFC 2046 §5.1.1): the
        # content reads back exactly, with or without a final newline of its own.
        return _PART_HEAD_8BIT[subtype], content
    return _PART_HEAD_BASE64[subtype], base64.encodebytes(content)


_PRESERVED_START = re.compile(rb"<(pre|textarea)\b", re.IGNORECASE)
_PRESERVED = re.compile(rb"(<(pre|textarea)\b.*?</\2\s*>)", re.IGNORECASE | re.DOTALL)


def pack_html(html: str) -> str:
    """The HTML in as few lines of at most ~900 octets as its own line breaks allow.

    HTML reads a line break and the indentation around it as one space, so consecutive lines are
    joined with a single space; the receiving server then reads a few long lines instead of dozens of
    short ones. `<pre>` and `<textarea>`, where line breaks are content, are kept as they are (the
    templates have none today). A single line over the limit stays over it: its part goes as base64.
    """
    return _pack_html(html.encode("utf-8")).decode("utf-8")


def _pack_html(html: bytes) -> bytes:
    # On the UTF-8 bytes: octets are what the limit counts, and ASCII whitespace is never part of a
    # multi-byte character, so stripping it cannot cut one.
    if not _PRESERVED_START.search(html):
        return _pack(html)
    pieces = _PRESERVED.split(html)
    out = []
    for i in range(0, len(pieces), 3):  # split() gives: outside, whole element, tag name, outside, …
        out.append(_pack(pieces[i]))
        if i + 1 < len(pieces):
            out.append(pieces[i + 1])
    return b"".join(out)


def _pack(html: bytes) -> bytes:
    lines = html.split(b"\n")
    if len(lines) == 1:
        return html
    # A newline at either end stays one: it is all that separates this text from a <pre> beside it.
    head = b"\n" if not lines[0].strip(_SPACE) else b""
    tail = b"\n" if not lines[-1].strip(_SPACE) else b""
    out: list[bytes] = []
    current: list[bytes] = []
    size = -1
    for raw in lines:
        line = raw.strip(_SPACE)
        if not line:
            continue
        if current and size + 1 + len(line) > _PACK_TO:
            out.append(b" ".join(current))
            current, size = [], -1
        current.append(line)
        size += 1 + len(line)
    if current:
        out.append(b" ".join(current))
    return head + b"\n".join(out) + tail


_SPACE = b" \t\r\f"  # HTML's whitespace, with the newline the lines were split on


def seven_bit(data: bytes) -> bytes:
    """A message from build_message with every 8-bit part as base64, for a server without 8BITMIME.

    Byte for byte what `build_message(..., eight_bit=False)` writes for the same notice; data of any
    other shape, or without 8-bit parts, comes back as it is.
    """
    head, sep, body = data.partition(b"\n\n")
    found = _BOUNDARY.match(head)
    if not sep or not found or b"\nContent-Transfer-Encoding: 8bit\n" not in body:
        return data
    delimiter = b"--" + found.group(1)
    pieces = body.split(delimiter)
    out = [pieces[0]]
    for piece in pieces[1:]:
        part_head, sep, content = piece.partition(b"\n\n")
        if sep and part_head.endswith(b"\nContent-Transfer-Encoding: 8bit") and content.endswith(b"\n"):
            # The last newline belongs to the next delimiter; what comes before it is the content.
            piece = b"".join((part_head[:-4], b"base64\n\n", base64.encodebytes(content[:-1]), b"\n"))
        out.append(piece)
    return head + b"\n\n" + delimiter.join(out)


_BOUNDARY = re.compile(rb'Content-Type: multipart/alternative;\n boundary="([^"\n]+)"\n')
_PART_HEAD_BASE64 = {
    subtype: f'Content-Type: text/{subtype}; charset="utf-8"\nContent-Transfer-Encoding: base64\n\n'.encode("ascii")
    for subtype in ("plain", "html")
}
_PART_HEAD_8BIT = {
    subtype: f'Content-Type: text/{subtype}; charset="utf-8"\nContent-Transfer-Encoding: 8bit\n\n'.encode("ascii")
    for subtype in ("plain", "html")
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


__all__ = [
    "COMMON_KEYS",
    "CONTEXT_KEYS",
    "KINDS",
    "LABELS",
    "LETTERHEAD_KEYS",
    "Attachment",
    "RenderedNotice",
    "build_message",
    "cn_date",
    "environment",
    "message_id_for",
    "pack_html",
    "render_notice",
    "sender_domain",
    "seven_bit",
    "yuan",
]

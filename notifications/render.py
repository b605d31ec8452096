"""Notice data → subject, text and HTML, then → RFC 5322 bytes; pure, so it can be tested without SMTP.

Rendering lives apart from sending (STYLE.md, "Side effects"): the outbox stores the data to render,
this module turns it into a message value, and `notifications.smtp` delivers the bytes.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Undefined, UndefinedError, select_autoescape
from jinja2.runtime import make_logging_undefined

from models.clock import SHANGHAI, to_shanghai
from models.outbox import Notice

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
    "enforcement_notice",
    "escalation",
    "gate_waiting",
)

COMMON_KEYS: frozenset[str] = frozenset({"program_name", "recipient_name", "today"})

# What each kind's producer must put in the context, besides COMMON_KEYS: the contract between the
# code that enqueues a notice and the templates (a test keeps the two in step).
CONTEXT_KEYS: dict[str, frozenset[str]] = {
    kind: frozenset(keys)
    for kind, keys in {
        "alliance_invitation": ("city", "bureau", "lead_city", "response_due"),
        "declaration_receipt": ("enterprise_name", "declaration_id", "product_count", "submitted_on"),
        "declaration_decision": ("enterprise_name", "declaration_id", "decision", "reason", "items"),
        "application_receipt": ("institution_name", "application_id", "district", "submitted_on"),
        "application_decision": (
            "institution_name", "application_id", "decision", "level", "reason", "can_reapply",
        ),
        "batch_published": ("batch_number", "institution_name", "published_on", "list_url"),
        "account_reminder": ("institution_name", "due_on", "working_days_left"),
        "contract_reminder": ("institution_name", "enterprise_names", "due_on", "working_days_left"),
        "payment_due": ("institution_name", "amount", "due_on", "order_count"),
        "payment_overdue": ("institution_name", "amount", "due_on", "months_overdue"),
        "quarterly_report_reminder": ("year", "quarter", "due_on"),
        "enforcement_notice": ("subject_name", "action", "reason", "effective_on"),
        "escalation": ("reviewer_name", "district", "items"),
        "gate_waiting": ("reviewer_name", "gate_title", "item_count", "due_on"),
    }.items()
}

# Code values → the words a letter uses; a global so subject, text and HTML say the same thing.
LABELS: dict[str, dict[str, str]] = {
    "decision": {"approve": "通过", "reject": "未通过"},
    "level": {"district": "区（县）医保局初审", "city": "市医保局审核"},
    "enforcement": {
        "interview": "约谈",
        "rectification": "限期整改",
        "suspension": "暂停医保结算",
        "disqualification": "取消集采药品“三进”资格",
    },
}

_CENT = Decimal("0.01")
_LINE_BREAKS = re.compile(r"[\r\n\t]+")


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


def _environment(strict: bool) -> Environment:
    undefined: type[Undefined] = StrictUndefined if strict else make_logging_undefined(log, Undefined)
    env = Environment(
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
    env = environment(strict)
    data = dict(context)
    return RenderedNotice(
        # One line: a template's trailing newline or a name with a line break must not split the header.
        subject=_one_line(env.get_template(f"{kind}.subject.txt").render(data)),
        text=env.get_template(f"{kind}.txt").render(data),
        html=env.get_template(f"{kind}.html").render(data),
    )


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


def _address(name: str, address: str) -> str:
    # formataddr RFC 2047-encodes a Chinese display name and leaves a plain one readable.
    return formataddr((_one_line(name), address.strip()), charset="utf-8")


def _base64_part(text: str, subtype: str) -> MIMENonMultipart:
    # Encoded here with one C call instead of MIMEText's charset machinery: a third of the build time.
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    del part["MIME-Version"]  # RFC 2045 wants it once, at the top; each header costs a fold when written
    part["Content-Transfer-Encoding"] = "base64"
    part.set_payload(base64.encodebytes(text.encode("utf-8")).decode("ascii"))
    return part


def build_message(
    notice: Notice | Mapping[str, Any],
    rendered: RenderedNotice,
    sender: str,
    message_id: str,
    *,
    when: datetime | None = None,
) -> bytes:
    """multipart/alternative bytes for SMTP or a maildir.

    Uses the legacy `email.mime` classes on purpose: LIMITS.md measured them ~3× faster than
    `EmailMessage` when building bilingual messages in bulk (here: ~8× with the two shortcuts below).
    """
    if isinstance(notice, Notice):
        recipient_name, email = notice.recipient_name, notice.email
    else:
        recipient_name, email = str(notice.get("recipient_name") or ""), notice.get("email")
    if not email:
        raise ValueError("a notice without an e-mail address cannot become a message")
    sender_name, sender_address = parseaddr(sender)
    # A fixed boundary skips the generator's collision scan (a fresh regex per message). It cannot
    # collide: both parts are base64, whose lines never contain "-" or "_".
    token = hashlib.sha1(message_id.encode("utf-8"), usedforsecurity=False).hexdigest()[:20]
    msg = MIMEMultipart("alternative", boundary=f"----=_sanjin_{token}")
    msg["Subject"] = Header(_one_line(rendered.subject), "utf-8", header_name="Subject").encode()
    msg["From"] = _address(sender_name, sender_address or sender)
    msg["To"] = _address(recipient_name, str(email))
    msg["Date"] = format_datetime(to_shanghai(when) if when else datetime.now(SHANGHAI))
    msg["Message-ID"] = message_id
    # Tells vacation responders and mailing lists not to answer a machine.
    msg["Auto-Submitted"] = "auto-generated"
    # Plain text first: RFC 2046 orders alternatives from least to most preferred.
    msg.attach(_base64_part(rendered.text, "plain"))
    msg.attach(_base64_part(rendered.html, "html"))
    return msg.as_bytes()


__all__ = [
    "COMMON_KEYS",
    "CONTEXT_KEYS",
    "KINDS",
    "LABELS",
    "RenderedNotice",
    "build_message",
    "cn_date",
    "environment",
    "message_id_for",
    "render_notice",
    "sender_domain",
    "yuan",
]

"""The mailer the settings ask for: SMTP in production, a maildir offline (demo, rehearsal)."""

from __future__ import annotations

from core.settings import get_settings
from notifications.smtp import MaildirMailer, Mailer, SmtpMailer


def mailer_from_settings() -> Mailer:
    settings = get_settings()
    if settings.mailer == "maildir":
        return MaildirMailer(settings.maildir, sender=settings.smtp_sender)
    return SmtpMailer(settings)

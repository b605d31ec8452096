"""When the reminder run fires: a bureau wall-clock time, turned into a validated Prefect cron schedule.

Kept apart from the deployment builder so the time of day is one checked value, not a cron string
typed by hand: "8:30" vs "30 8" is an easy mistake that would remind institutions in the night.
"""

from __future__ import annotations

import re

TIMEZONE = "Asia/Shanghai"
DEFAULT_REMINDER_TIME = "08:30"  # assumed: start of the bureau's office day; no seed says

_HHMM = re.compile(r"(?P<hour>[01]?[0-9]|2[0-3]):(?P<minute>[0-5][0-9])")


def reminder_schedule(time_hhmm: str = DEFAULT_REMINDER_TIME) -> dict[str, str]:
    """{"cron": "30 8 * * *", "timezone": "Asia/Shanghai"} for a daily run at ``time_hhmm`` Shanghai time.

    Raises ValueError for anything but a 24-hour HH:MM (H:MM accepted), so a typo in configuration
    stops the deployment instead of scheduling reminders at a surprising hour.
    """
    match = _HHMM.fullmatch(time_hhmm.strip()) if isinstance(time_hhmm, str) else None
    if match is None:
        raise ValueError(
            f"提醒时间应为24小时制 HH:MM，例如 08:30，而不是 {time_hhmm!r} / "
            f"reminder time must be a 24-hour HH:MM such as 08:30, not {time_hhmm!r}"
        )
    return {"cron": f"{int(match['minute'])} {int(match['hour'])} * * *", "timezone": TIMEZONE}


# The default schedule's cron. Settings have no reminder-time field yet (core/settings.py is owned
# elsewhere); once `reminder_time` exists the builder should call reminder_schedule(settings.reminder_time).
REMINDER_CRON: str = reminder_schedule()["cron"]

__all__ = ["DEFAULT_REMINDER_TIME", "REMINDER_CRON", "TIMEZONE", "reminder_schedule"]

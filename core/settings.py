"""One settings object, read from the environment (`SANJIN_*`) once, failing fast on bad values."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable; the embedded default is a SQLite file under ./var."""

    model_config = SettingsConfigDict(env_prefix="SANJIN_", extra="ignore", hide_input_in_errors=True)

    home: Path = Field(default=Path("var"), description="where the embedded database and outputs live")
    database_url: str | None = None
    clock: Literal["system", "database"] = "system"
    calendar_overrides: Path | None = None
    # From this day (MM-DD) on, staff are warned while next year's holiday schedule is not entered (issue 12).
    calendar_warning_from: str = Field(default="10-01", pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")

    # ASVS V2.1.1: 12 characters; an installation may ask for more, never fewer than 8 (NIST SP 800-63B).
    password_min_length: int = Field(default=12, ge=8, le=64)

    # Uploads are refused before parsing beyond these (issue #18: a cell at XFD1048576, a zip bomb).
    import_max_bytes: int = Field(default=100_000_000, ge=1_000)
    import_max_unpacked_bytes: int = Field(default=1_000_000_000, ge=1_000)
    import_max_rows: int = Field(default=500_000, ge=10)
    import_max_columns: int = Field(default=200, ge=16, le=702)  # 702 = ZZ: the scan reads two letters

    # The audit chains' heads as each check saw them, kept outside the database (tasks/trust/audit_anchor.py):
    # empty for SANJIN_HOME/audit-heads.json, "off" for none (the tests' throw-away databases), or a path —
    # ideally on storage the database's administrators cannot write.
    audit_heads_file: str = ""

    reminder_time: str = "08:30"  # Asia/Shanghai, daily reminder run (deploy/schedules.py validates it)
    mailer: Literal["smtp", "maildir"] = "smtp"
    maildir: Path = Field(default=Path("var/maildir"), description="where the maildir mailer writes")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = "sanjin@ybj.example.gov.cn"
    smtp_connections: int = 4
    smtp_rate_per_second: float = 0.0  # 0 = unlimited

    # PostgreSQL: connections the compliance pass runs its independent rule families on, side by side (issue #14;
    # tasks/compliance/compliance_pass.py). 1 = one transaction, as SQLite always runs it.
    compliance_connections: int = Field(default=2, ge=1, le=8)

    @property
    def calendar_warning_from_day(self) -> tuple[int, int]:
        month, _, day = self.calendar_warning_from.partition("-")
        return int(month), int(day)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'sanjin.db').resolve()}"

    @property
    def output_dir(self) -> Path:
        return self.home / "out"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
